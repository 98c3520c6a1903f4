"""``vidauth demo`` runs the main job end to end on the embedded sandbox."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import SETTING_NAMES


def test_demo_runs_clean_without_any_configuration(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["COLUMNS"] = "80"
    # a hostile .env in the working directory must not leak into the demo
    (tmp_path / ".env").write_text("PANOPTO_SERVER=http://evil.example.com\n")  # type: ignore[operator]
    done = subprocess.run(
        [sys.executable, "-m", "vidauth", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert "Signed out" in text and "Demo finished" in text
    assert "signed in as alice" in text
    # the upload step: sessionUpload id, then Complete with a session and its viewer URL
    assert "started (upload id " in text and "complete: session " in text
    assert "Viewer.aspx?id=" in text
    # the sign-in link is printed whole (not cropped to the terminal width)
    link = next(line for line in text.splitlines() if "link: " in line)
    assert "state=" in link and "nonce=" in link
    # the status listing keeps the sandbox's URL whole at 80 columns (the link names it too)
    server = link.split("link: ", 1)[1].split("/Panopto/", 1)[0]
    status = text.split("3. vidauth status", 1)[1].split("4. ", 1)[0]
    assert server in status, status
    assert "Traceback" not in text
    assert "access_token" not in text and "refresh_token" not in text
