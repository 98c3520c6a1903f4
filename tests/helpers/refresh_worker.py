"""One process of the concurrent-refresh test: waits for a start time, then asks for a token."""

from __future__ import annotations

import sys
import time

from vidauth.client import Vidauth
from vidauth.config import load_settings


def main() -> None:
    start_at = float(sys.argv[1])
    with Vidauth(load_settings()) as va:
        manager = va.token_manager()
        va.store.load_tokens(manager.account_id)  # connect before the start line
        time.sleep(max(0.0, start_at - time.time()))
        print(manager.access_token(60), flush=True)


if __name__ == "__main__":
    main()
