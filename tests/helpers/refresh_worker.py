"""One process of the concurrent-refresh test: waits for a start time, then asks for a token."""

from __future__ import annotations

import sys
import time

from vidauth.client import Vidauth
from vidauth.config import load_settings


def main() -> None:
    start_at = float(sys.argv[1])
    min_validity = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    with Vidauth(load_settings()) as va:
        manager = va.token_manager()
        va.store.load_tokens(manager.account_id)  # connect before the start line
        time.sleep(max(0.0, start_at - time.time()))
        print(manager.access_token(min_validity), flush=True)


if __name__ == "__main__":
    main()
