"""The page a person sees after signing in as someone else than the application expected."""

from __future__ import annotations

from collections.abc import Callable

from tests.service.conftest import ServiceSetup, open_connect_link


def test_wrong_account_page_asks_for_a_new_link(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service()
    r = service.api.post("/v1/accounts/alice-id/connect", json={"expected_username": "alice"})
    assert r.status_code == 200, r.text
    page = open_connect_link(
        r.json()["connect_url"], username="bob", password="bob-sandbox-password"
    )
    text = " ".join(page.text.split())
    assert "ask your application for a new sign-in link" in text, text
    assert "open the link again" not in text
    assert service.api.get("/v1/accounts/alice-id").json()["status"] == "not_connected"
