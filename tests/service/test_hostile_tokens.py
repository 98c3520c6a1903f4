"""Issue 19, point 8: any bad uploads-page token is a 403, never a 500."""

from __future__ import annotations

import httpx

from tests.service.conftest import ServiceSetup, press_start_button


def test_uploads_page_token_with_a_non_ascii_mac_is_403(service: ServiceSetup) -> None:
    link = service.api.post("/v1/accounts/u1/uploads-page")
    assert link.status_code == 200, link.text
    good = link.json()["url"]
    assert httpx.get(good).status_code == 200
    payload = good.split("t=", 1)[1].split(".", 1)[0]
    for mac in ("%C3%A9", "%E2%80%AE", "%FF", "%00", "a" * 43 + "%C3%A9"):
        r = httpx.get(f"{service.url}/pages/uploads?t={payload}.{mac}")
        assert r.status_code == 403, (mac, r.status_code, r.text)
    r = httpx.get(f"{service.url}/pages/uploads?t=%C3%A9.%C3%A9")
    assert r.status_code == 403, r.text


def test_an_uploads_page_link_ends_with_the_api_key_that_made_it(service: ServiceSetup) -> None:
    from vidauth.service.auth import revoke_api_key
    from vidauth.service.models import ApiKey

    key = service.new_key(tenant="default", name="short-lived")
    client = service.client(key)
    link = client.post("/v1/accounts/u1/uploads-page").json()["url"]
    other = service.api.post("/v1/accounts/u1/uploads-page").json()["url"]
    assert httpx.get(link).status_code == 200
    with service.ctx.db.session() as session:
        key_id = session.query(ApiKey.id).filter(ApiKey.name == "short-lived").scalar()
    assert revoke_api_key(service.ctx.db, key_id) is not None
    assert httpx.get(link).status_code == 403
    assert httpx.get(other).status_code == 200  # links of other keys go on


def test_a_connect_link_ends_with_the_api_key_that_made_it(service: ServiceSetup) -> None:
    from vidauth.service.auth import revoke_api_key
    from vidauth.service.models import ApiKey

    key = service.new_key(tenant="default", name="doomed")
    client = service.client(key)
    unopened = client.post("/v1/accounts/u1/connect").json()["connect_url"]
    opened = client.post("/v1/accounts/u2/connect").json()["connect_url"]
    browser = httpx.Client(timeout=30.0)
    start = press_start_button(opened, browser)
    assert start.status_code == 303, start.text
    with service.ctx.db.session() as session:
        key_id = session.query(ApiKey.id).filter(ApiKey.name == "doomed").scalar()
    assert revoke_api_key(service.ctx.db, key_id) is not None
    r = httpx.get(unopened, follow_redirects=False)
    assert r.status_code == 400 and "no longer valid" in r.text
    # A sign-in opened before the revocation is not accepted at the callback either.
    from vidauth_sandbox.browser import complete_browser_login

    done = complete_browser_login(start.headers["location"], client=browser)
    browser.close()
    assert done.status_code == 400 and "no longer valid" in done.text
    assert service.api.get("/v1/accounts/u2").json()["status"] == "not_connected"
