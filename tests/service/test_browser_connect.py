"""Connect links in a real headless Chromium: the start page's button and cookie, and who may
finish.

Mallory opens her own connect link (her browser gets the cookie) and sends the Panopto sign-in
page it leads to on to Bob; Bob's Chromium, without the cookie, signs in and clicks Allow: the
service refuses and connects nothing. The same link opened by the right browser connects, which
also shows that Chromium sends the cookie (HttpOnly, SameSite=Lax, Path=/oauth/callback) back.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.service.conftest import ServiceSetup, press_start_button
from tests.service.test_browser import (  # noqa: F401 - the browser fixture
    _continue_to_panopto,
    _result_page,
    _wait,
    browser,
)


def _sign_in(driver: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    _wait(
        "the consent page",
        lambda: driver.find_elements(By.CSS_SELECTOR, "#consent button[value=allow]"),
    )[0].click()


def test_panopto_link_forwarded_to_another_browser_connects_nothing(
    service: ServiceSetup,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    from selenium.webdriver.common.by import By

    link = service.api.post("/v1/accounts/mallory/connect").json()["connect_url"]
    with httpx.Client(timeout=30) as mallory:
        panopto_page = press_start_button(link, mallory).headers["location"]
    browser.get(panopto_page)  # Bob's browser
    _sign_in(browser, "bob", "bob-sandbox-password")
    result = _result_page(browser)
    assert result.get_attribute("data-status") == "wrong_browser"
    assert "another browser" in browser.find_element(By.ID, "connect-message").text
    assert service.api.get("/v1/accounts/mallory").json()["status"] == "not_connected"


def test_start_page_cookie_comes_back_from_chromium(
    service: ServiceSetup,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    link = service.api.post(
        "/v1/accounts/student-11/connect", json={"expected_username": "bob"}
    ).json()["connect_url"]
    browser.get(link)  # the start page: whom the link is for, and its two buttons
    from selenium.webdriver.common.by import By

    assert browser.find_element(By.ID, "connect-username").text == "bob"
    _continue_to_panopto(browser)
    # Scoped to the callback path: the sandbox's pages do not see it.
    names = [c["name"] for c in browser.get_cookies()]
    assert not any(n.startswith("vidauth_connect_") for n in names), names
    _sign_in(browser, "bob", "bob-sandbox-password")
    result = _result_page(browser)
    assert result.get_attribute("data-status") == "connected"
    account = service.api.get("/v1/accounts/student-11").json()
    assert account["status"] == "connected" and account["username"] == "bob"
    # The same link a second time (another tab, a forwarded copy) is spent.
    browser.get(link)
    assert "already opened" in browser.page_source
