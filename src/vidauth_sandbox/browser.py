"""A scripted browser for the sandbox's sign-in pages, for the demo and tests.

:func:`complete_browser_login` behaves like a person: it opens the authorize URL, fills in the
login form it finds, presses Allow or Deny on the consent form, and finally follows the redirect
to the client's ``redirect_uri`` with a GET — which is how vidauth's loopback listener receives
the code. Forms are read from the HTML (action, hidden fields, buttons); cookies live in the
``httpx.Client``. Nothing it raises contains the code, a token or the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from vidauth.errors import VidauthError

MAX_STEPS = 12


class BrowserLoginError(VidauthError):
    """The scripted browser could not get to the redirect: an error page, a refused login…"""


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, label
    password_field: str | None = None


class _PageParser(HTMLParser):
    """Collects forms, and the text of elements with class or id ``error``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self._error_depth = 0
        self._button: tuple[str, str] | None = None
        self._button_label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "error" in a.get("class", "").split() or a.get("id") == "error":
            self._error_depth = 1
            self.errors.append("")
        elif self._error_depth:
            self._error_depth += 1
        if tag == "form":
            self.forms.append(_Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            kind = a.get("type", "text").lower()
            form = self.forms[-1]
            if kind == "password" and a.get("name"):
                form.password_field = a["name"]
            if kind == "submit" and a.get("name"):
                form.buttons.append((a["name"], a.get("value", ""), a.get("value", "")))
            elif a.get("name") and kind not in ("submit", "button", "image"):
                form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("type", "submit").lower() == "submit":
            self._button = (a.get("name", ""), a.get("value", ""))
            self._button_label = []

    def handle_endtag(self, tag: str) -> None:
        if self._error_depth:
            self._error_depth -= 1
        if tag == "button" and self._button is not None and self.forms:
            name, value = self._button
            self.forms[-1].buttons.append((name, value, "".join(self._button_label).strip()))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._error_depth:
            self.errors[-1] += data
        if self._button is not None:
            self._button_label.append(data)
        if data.strip():
            self.text.append(data.strip())


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


def _public(url: str) -> str:
    """The URL without query or fragment (which may hold a code) for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _pick_button(form: _Form, consent: bool) -> tuple[str, str] | None:
    wanted = ("allow", "yes", "accept", "grant") if consent else ("deny", "no", "cancel", "refuse")
    for name, value, label in form.buttons:
        if value.lower() in wanted or label.lower() in wanted:
            return name, value
    return None


def complete_browser_login(
    authorize_url: str,
    *,
    username: str = "alice",
    password: str = "alice-sandbox-password",  # noqa: S107 - public sandbox default
    consent: bool = True,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Sign in and answer the consent page like a person, then GET the final redirect.

    Returns the response of the GET to the ``redirect_uri`` (with ``?code=…`` or ``?error=…``).
    Raises :class:`BrowserLoginError` with the page's error text when the server shows an
    error page instead of redirecting (redirect_uri mismatch, unknown client), refuses the
    login, or the redirect target cannot be reached.
    """
    own = client is None
    browser = client or httpx.Client(timeout=10.0)
    try:
        return _run(browser, authorize_url, username, password, consent)
    finally:
        if own:
            browser.close()


def _run(
    browser: httpx.Client, authorize_url: str, username: str, password: str, consent: bool
) -> httpx.Response:
    server_origin = urlsplit(authorize_url)[:2]
    oauth_root = urlsplit(authorize_url).path.rsplit("/connect/", 1)[0] + "/"
    response = browser.get(authorize_url, follow_redirects=False)
    logged_in = False
    for _ in range(MAX_STEPS):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["Location"])
            parts = urlsplit(target)
            if parts[:2] == server_origin and parts.path.startswith(oauth_root):
                response = browser.get(target, follow_redirects=False)
                continue
            try:  # the redirect to the client: deliver it like a browser would
                return browser.get(target, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise BrowserLoginError(
                    f"the sign-in redirected to {_public(target)}, which did not answer "
                    f"({type(exc).__name__})"
                ) from None
        page = _parse(response.text)
        error = " ".join(e.strip() for e in page.errors if e.strip())
        form = next((f for f in page.forms if f.method == "post"), None)
        if form is None:
            detail = error or " ".join(page.text)[:300] or f"HTTP {response.status_code}"
            raise BrowserLoginError(f"the sign-in page showed an error: {detail}")
        action = urljoin(str(response.url), form.action or str(response.url))
        data = dict(form.fields)
        if form.password_field:
            if logged_in:
                raise BrowserLoginError(f"the login was refused: {error or 'no reason given'}")
            user_field = next(
                (n for n in data if n.lower() in ("username", "user", "login", "email")), "username"
            )
            data[user_field] = username
            data[form.password_field] = password
            button = form.buttons[0][:2] if form.buttons else None
            logged_in = True
        else:
            button = _pick_button(form, consent)
            if button is None:
                raise BrowserLoginError("the consent page has no Allow/Deny button")
        if button is not None and button[0]:
            data[button[0]] = button[1]
        response = browser.post(action, data=data, follow_redirects=False)
    raise BrowserLoginError(f"the sign-in did not finish within {MAX_STEPS} pages")
