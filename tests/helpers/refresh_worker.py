"""One process of the concurrent-refresh test: connects to the store, says ``ready``, reads the
start time from stdin, waits for it, then asks for a token."""

from __future__ import annotations

import sys
import time

from vidauth.client import Vidauth
from vidauth.config import load_settings


def main() -> None:
    min_validity = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    with Vidauth(load_settings()) as va:
        manager = va.token_manager()
        va.store.load_tokens(manager.account_id)  # connect before the start line
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
        time.sleep(max(0.0, start_at - time.time()))
        print(manager.access_token(min_validity), flush=True)


if __name__ == "__main__":
    main()
