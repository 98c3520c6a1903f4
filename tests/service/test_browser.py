"""The service's pages in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

The full click-through a backend's user makes: the backend asks for a link, the browser opens
it, the user signs in at the sandbox and clicks Allow (or Deny), and the service's callback page
says how it went. Then the uploads page, which must refresh itself until the upload completes,
and the API docs (/docs, /redoc), which must render with no network beyond loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.service.conftest import MiB, ServiceSetup, video_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FOLDER = "SIT101 Lectures"


def _missing_browser() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: apt-get install chromium chromium-driver (./run test does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e .[test]"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium driven through the system chromedriver (fails in CI when missing)."""
    problem = _missing_browser()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vidauth-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1100,800",
        # no name resolves but loopback's: a page that needs a CDN breaks, as it would offline
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request made
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _sign_in_at_sandbox(driver: Any, *, allow: bool) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.NAME, "username").send_keys("alice")
    driver.find_element(By.NAME, "password").send_keys("alice-sandbox-password")
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    decision = "allow" if allow else "deny"
    button = _wait(
        "the consent page",
        lambda: driver.find_elements(By.CSS_SELECTOR, f"#consent button[value={decision}]"),
    )[0]
    button.click()


def _continue_to_panopto(driver: Any) -> None:
    """Click the start page's "Continue to Panopto" (a plain form: no script needed) and wait
    for the sandbox's login page."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "continue").click()
    _wait("the sandbox's login page", lambda: driver.find_elements(By.NAME, "username"))


def _result_page(driver: Any) -> Any:
    from selenium.webdriver.common.by import By

    return _wait("the callback page", lambda: driver.find_elements(By.ID, "connect-result"))[0]


def _row(driver: Any, element_id: str) -> dict[str, Any]:
    """The row's state and title, read in one script: the page may reload itself between two
    WebDriver calls, and an element found before a reload is stale after it."""
    found = driver.execute_script(
        "const row = document.getElementById(arguments[0]);"
        "if (!row) { return null; }"
        "const title = row.querySelector('.title');"
        "return {state: row.getAttribute('data-state'),"
        " title: title ? title.textContent.trim() : null};",
        element_id,
    )
    assert found, f"no #{element_id} on the page"
    return dict(found)


def test_click_through_connects_the_account(
    service: ServiceSetup, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    link = service.api.post("/v1/accounts/student-7/connect").json()["authorize_url"]
    browser.get(link)  # vidauth's start page: whom the link is for
    assert browser.find_element(By.ID, "connect-name").text == "student-7"
    browser.save_screenshot(str(tmp_path / "start.png"))
    _continue_to_panopto(browser)
    assert "Sign in" in browser.page_source  # the sandbox's login page
    _sign_in_at_sandbox(browser, allow=True)
    result = _result_page(browser)
    assert browser.current_url.startswith(service.url + "/oauth/callback")
    assert result.get_attribute("data-status") == "connected"
    assert "Panopto is connected" in browser.find_element(By.ID, "connect-title").text
    assert "alice" in browser.find_element(By.ID, "connect-message").text
    # the code and the state stay out of the page's text
    assert "code=" not in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / "connected.png"))
    account = service.api.get("/v1/accounts/student-7").json()
    assert account["status"] == "connected" and account["username"] == "alice"


def test_denying_consent_shows_the_error_and_connects_nothing(
    service: ServiceSetup, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    link = service.api.post("/v1/accounts/student-8/connect").json()["authorize_url"]
    browser.get(link)
    _continue_to_panopto(browser)
    _sign_in_at_sandbox(browser, allow=False)
    result = _result_page(browser)
    assert result.get_attribute("data-status") != "connected"
    assert "not connected" in browser.find_element(By.ID, "connect-title").text
    assert browser.find_element(By.ID, "connect-message").text.strip()
    browser.save_screenshot(str(tmp_path / "denied.png"))
    assert service.api.get("/v1/accounts/student-8").json()["status"] == "not_connected"


def test_uploads_page_refreshes_itself_until_complete(
    make_service: Callable[..., ServiceSetup], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    # 12 MiB at 3 MB/s: about four seconds of visible progress before Complete
    service = make_service(s3_bandwidth=3e6)
    service.connect("student-9")
    upload = service.api.upload(
        "student-9", content=video_bytes(12 * MiB), folder=FOLDER, title="Lab <3> & more"
    )
    assert upload.status_code == 202, upload.text
    upload_id = upload.json()["upload_id"]
    page = service.api.post("/v1/accounts/student-9/uploads-page").json()["url"]

    browser.get(page)
    first = _row(browser, f"upload-{upload_id}")
    assert first["state"] in ("queued", "uploading", "processing")
    assert first["title"] == "Lab <3> & more"
    browser.save_screenshot(str(tmp_path / "uploads-busy.png"))
    # a marker that only survives as long as the page is not reloaded
    browser.execute_script("window.__vidauthMarker = 1;")

    def complete() -> bool:
        # The page reloads itself: an element found before a reload is stale after it. Find the
        # row and read its state in one script, inside the page as it is at that moment.
        state = browser.execute_script(
            "const row = document.getElementById(arguments[0]);"
            "return row ? row.getAttribute('data-state') : null;",
            f"upload-{upload_id}",
        )
        return bool(state == "complete")

    _wait("the page to show complete", complete, timeout=40)
    assert browser.execute_script("return window.__vidauthMarker === undefined;")  # it reloaded
    row = browser.find_element(By.ID, f"upload-{upload_id}")
    assert row.find_element(By.CSS_SELECTOR, ".percent").text == "100%"
    watch = row.find_element(By.CSS_SELECTOR, "a.viewer-link").get_attribute("href")
    assert watch == service.api.get(f"/v1/uploads/{upload_id}").json()["viewer_url"]
    browser.save_screenshot(str(tmp_path / "uploads-complete.png"))
    # once nothing is in flight the page stops refreshing itself
    assert not browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")


def test_uploads_page_link_is_signed(service: ServiceSetup, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    page = service.api.post("/v1/accounts/student-10/uploads-page").json()["url"]
    browser.get(page + "x")
    assert "Link expired" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(page)
    assert browser.find_element(By.ID, "no-uploads").text == "No uploads yet."


def _requests(driver: Any) -> tuple[list[str], set[str]]:
    """Every http(s) URL the browser asked for since the last call (its performance log), and
    those among them it refused to send (blocked by the page's Content-Security-Policy)."""
    urls: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url.startswith(("http://", "https://")):
                urls[params["requestId"]] = url
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return list(urls.values()), {urls[i] for i in blocked if i in urls}


@pytest.mark.parametrize(
    ("path", "rendered", "asset"),
    [
        ("/docs", ".opblock .opblock-summary-path", "/docs/assets/swagger-ui-bundle.js"),
        ("/redoc", "[data-section-id^='operation/']", "/docs/assets/redoc.standalone.js"),
    ],
)
def test_api_docs_render_offline(
    service: ServiceSetup, browser: Any, tmp_path: Path, path: str, rendered: str, asset: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(service.url + path)
    found = _wait(
        f"{path} to show the operations",
        lambda: browser.find_elements(By.CSS_SELECTOR, rendered),
        timeout=30,
    )
    assert len(found) >= 5, f"{path} shows only {len(found)} operations"
    assert "/v1/uploads" in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / f"{path.strip('/')}.png"))
    urls, blocked = _requests(browser)
    assert any(urlsplit(u).path == asset for u in urls), urls
    away = {u for u in urls if urlsplit(u).hostname not in ("127.0.0.1", "localhost", "::1")}
    # (ReDoc's bundle asks for its logo from a CDN: the page's policy stops it in the browser)
    assert away <= blocked, f"{path} sent requests beyond loopback: {away - blocked}"
