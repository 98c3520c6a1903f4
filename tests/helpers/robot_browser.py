"""A stand-in for a person's browser, for ``BROWSER=…``: clicks through the sandbox's pages.

Usage: ``python robot_browser.py URL``. ``ROBOT_CONSENT=deny`` refuses at the consent page;
``ROBOT_RECORD=path`` appends the final redirect URL (with its code) to a file so a test can
check that the code never shows up in vidauth's output.
"""

from __future__ import annotations

import os
import sys

from vidauth_sandbox.browser import complete_browser_login


def main() -> None:
    url = sys.argv[1]
    consent = os.environ.get("ROBOT_CONSENT", "allow") != "deny"
    response = complete_browser_login(url, consent=consent)
    record = os.environ.get("ROBOT_RECORD")
    if record:
        with open(record, "a") as fh:
            fh.write(str(response.request.url) + "\n")


if __name__ == "__main__":
    main()
