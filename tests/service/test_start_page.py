"""A connect link's start page (issue 19): it names whom the link is for, uses nothing up when
merely fetched (a mail scanner, a glance at a forwarded link), and lets whoever it reached by
mistake turn it down. End to end over loopback, against the sandbox."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import select, update

from tests.service.conftest import ServiceSetup, open_connect_link, page_forms, press_start_button


def _link(service: ServiceSetup, user: str = "u1", **body: str) -> str:
    r = service.api.post(f"/v1/accounts/{user}/connect", json=body or None)
    assert r.status_code == 200, r.text
    return str(r.json()["connect_url"])


def _post(
    link: str, button: str = "continue", client: httpx.Client | None = None
) -> httpx.Response:
    """Submit a start page's form without loading the page first (the page's own form sends
    the same: ``s`` in a urlencoded body)."""
    url = httpx.URL(link)
    target = url.copy_with(query=None)
    if button == "decline":
        target = target.join("start/decline")
    browser = client or httpx.Client(timeout=30)
    try:
        return browser.post(target, data={"s": url.params["s"]}, follow_redirects=False)
    finally:
        if client is None:
            browser.close()


def _started(service: ServiceSetup, user: str) -> list[float | None]:
    from vidauth.service.models import PendingSignin

    with service.ctx.db.session() as session:
        return list(
            session.scalars(
                select(PendingSignin.started_at).where(
                    PendingSignin.tenant == service.tenant,
                    PendingSignin.external_user_id == user,
                )
            )
        )


def test_the_page_names_whom_the_link_is_for_escaped(tenant_service: ServiceSetup) -> None:
    service = tenant_service
    hostile = '<script>alert("x")</script> & Bob'
    link = _link(service, "u1", display_name=hostile, expected_username="bob<b>")
    page = httpx.get(link)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    text = page.text
    assert "<script" not in text and "<b>" not in text  # no markup from values, no script at all
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Bob" in text
    assert 'This sign-in link is for <strong id="connect-name">&lt;script&gt;' in text
    assert 'Sign in to Panopto as <strong id="connect-username">bob&lt;b&gt;</strong>' in text
    assert "Continue to Panopto" in text and "This link is not for me" in text
    # Both buttons are plain forms posting the link's secret: no JavaScript needed.
    forms = page_forms(text)
    s = httpx.URL(link).params["s"]
    assert forms["continue-form"] == ("post", "/connect/start", {"s": s})
    assert forms["decline-form"] == ("post", "/connect/start/decline", {"s": s})

    # Without display_name: the backend's user id, escaped too; no expected user, no such line.
    link = _link(service, "<img src=x onerror=alert(1)>")
    text = httpx.get(link).text
    assert '<strong id="connect-name">&lt;img src=x onerror=alert(1)&gt;</strong>' in text
    assert "<img" not in text
    assert "Sign in to Panopto as" not in text


def test_a_prefetch_uses_nothing_up_and_continuing_works_once(
    tenant_service: ServiceSetup,
) -> None:
    service = tenant_service
    link = _link(service, "u1", display_name="Alice Example")
    for _ in range(3):  # a mail scanner, a link preview, the user's first look
        assert httpx.get(link).status_code == 200
    assert _started(service, "u1") == [None]
    page = open_connect_link(link)  # GET, "Continue to Panopto", sign in, Allow
    assert page.status_code == 200, page.text
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"
    # Continuing again (another tab, a forwarded copy) is refused, on POST and on GET.
    again = _post(link)
    assert again.status_code == 400
    assert "already opened" in again.text and 'data-status="error"' in again.text
    assert again.headers["cache-control"] == "no-store"
    assert "set-cookie" not in again.headers
    shown = httpx.get(link)
    assert shown.status_code == 400 and "already opened" in shown.text


def test_continue_posts_once_with_a_cookie(tenant_service: ServiceSetup) -> None:
    service = tenant_service
    link = _link(service)
    with httpx.Client(timeout=30) as browser:
        first = press_start_button(link, browser)
        assert first.status_code == 303, first.text
        assert first.headers["location"].startswith(service.sandbox.url)
        assert first.headers["cache-control"] == "no-store"
        assert "HttpOnly" in first.headers["set-cookie"]
        second = _post(link, client=browser)
    assert second.status_code == 400 and "already opened" in second.text
    assert _started(service, "u1") != [None]


def test_not_for_me_ends_the_link_and_connects_nothing(tenant_service: ServiceSetup) -> None:
    service = tenant_service
    link = _link(service, "u1", display_name="Alice Example")
    with httpx.Client(timeout=30) as bob:
        declined = press_start_button(link, bob, "decline")
        assert declined.status_code == 200, declined.text
        assert declined.headers["cache-control"] == "no-store"
        assert 'data-status="declined"' in declined.text
        assert "Nothing was connected" in declined.text
        assert "tell whoever sent it" in declined.text
        assert "set-cookie" not in declined.headers
        # The link is over: continuing, looking and declining again all show the error page.
        for answer in (_post(link, client=bob), bob.get(link), _post(link, "decline", bob)):
            assert answer.status_code == 400, answer.text
            assert "turned down" in answer.text
    assert _started(service, "u1") == [None]
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"
    events = service.ctx.store.audit_events()
    assert ("connect_declined", f"tenant={service.tenant}") in events
    # The backend hands out a new link, which works.
    assert open_connect_link(_link(service)).status_code == 200
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"


def test_a_continued_link_cannot_be_declined(tenant_service: ServiceSetup) -> None:
    from vidauth_sandbox.browser import complete_browser_login

    service = tenant_service
    link = _link(service)
    with httpx.Client(timeout=30) as browser:
        start = press_start_button(link, browser)
        refused = _post(link, "decline")
        assert refused.status_code == 400 and "already opened" in refused.text
        page = complete_browser_login(start.headers["location"], client=browser)
    assert page.status_code == 200, page.text
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"


def test_unusable_links_show_the_error_page_on_get_and_post(tenant_service: ServiceSetup) -> None:
    from vidauth.service.auth import revoke_api_key
    from vidauth.service.models import ApiKey, PendingSignin

    service = tenant_service
    base = f"{service.url}/connect/start"
    unknown = f"{base}?s=no-such-link"
    for answer in (
        httpx.get(unknown),
        _post(unknown),
        _post(unknown, "decline"),
        httpx.get(base),
        httpx.post(base),  # no body
        httpx.post(base, data={"s": ["a", "b"]}),  # two of them
        httpx.post(base, json={"s": "no-such-link"}),  # not a form
    ):
        assert answer.status_code == 400, answer.text
        assert "unknown" in answer.text and 'data-status="error"' in answer.text
        assert answer.headers["cache-control"] == "no-store"

    expired = _link(service, "u2")
    with service.ctx.db.session() as session:
        session.execute(
            update(PendingSignin)
            .where(PendingSignin.tenant == service.tenant)
            .values(expires_at=time.time() - 1)
        )
    for answer in (httpx.get(expired), _post(expired), _post(expired, "decline")):
        assert answer.status_code == 400 and "expired" in answer.text

    key = service.new_key(tenant=service.tenant, name="doomed-start")
    revoked = service.client(key).post("/v1/accounts/u3/connect").json()["connect_url"]
    with service.ctx.db.session() as session:
        key_id = session.query(ApiKey.id).filter(ApiKey.name == "doomed-start").scalar()
    assert revoke_api_key(service.ctx.db, key_id) is not None
    for answer in (httpx.get(revoked), _post(revoked), _post(revoked, "decline")):
        assert answer.status_code == 400 and "no longer valid" in answer.text
    assert service.api.get("/v1/accounts/u2").json()["status"] == "not_connected"


def test_the_form_body_is_bounded(tenant_service: ServiceSetup) -> None:
    service = tenant_service
    link = _link(service)
    limit = service.ctx.service.max_request_bytes
    s = httpx.URL(link).params["s"]
    r = httpx.post(
        f"{service.url}/connect/start", data={"s": s, "pad": "x" * limit}, follow_redirects=False
    )
    assert r.status_code == 413
    assert _started(service, "u1") == [None]  # the link is still good
    assert open_connect_link(link).status_code == 200


def test_display_name_is_checked(tenant_service: ServiceSetup) -> None:
    api = tenant_service.api
    for bad in ("Ali\x07ce", "Alice\u202e", "Alice\nBob", "   "):
        r = api.post("/v1/accounts/u1/connect", json={"display_name": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "invalid_request"
        assert r.json()["detail"].startswith("display_name "), r.text
    r = api.post("/v1/accounts/u1/connect", json={"display_name": "A" * 201})
    assert r.status_code == 422 and "display_name" in r.json()["detail"]
    r = api.post("/v1/accounts/u1/connect", json={"display_name": "  Zoë Ünal  "})
    assert r.status_code == 200, r.text
    page = httpx.get(r.json()["connect_url"])
    assert '<strong id="connect-name">Zoë Ünal</strong>' in page.text
