"""Issue 19, point 3: a refreshed grant survives a disk that is full when its answer comes.

The recovery slot is allocated before the refresh is sent and overwritten in place; creating
any new file (the database journal, the recovery file) fails with ENOSPC here, as on a disk
another tenant filled meanwhile, and the new tokens are still kept and restored.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.service.conftest import ServiceSetup


def test_a_refreshed_grant_is_kept_when_no_new_file_can_be_written(
    make_service: Callable[..., ServiceSetup], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidauth.store.tokens import TokenSet

    service = make_service(run_worker=False)
    service.connect("u1")
    store = service.ctx.store
    (account,) = store.list_accounts()
    claim = store.claim_refresh(account.id, "refresher", 30.0, lambda _t, _s: True)
    assert claim.held
    rotated = TokenSet(
        access_token="rotated-access-token-0123456789",
        refresh_token="rotated-refresh-token-0123456789",
        expires_at=4_000_000_000.0,
    )
    real_open = os.open

    def full_disk(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", full_disk)
    try:
        kept = store.save_recovery(account.id, claim.version, "refresher", rotated)
    finally:
        monkeypatch.setattr(os, "open", real_open)
    assert kept is not None, "the refreshed grant was lost on a full disk"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert b"rotated-refresh-token" not in kept.read_bytes()  # encrypted
    # Space is back: the next use restores it over the grant it replaced.
    assert store.restore_recovery(account.id)
    stored = store.load_tokens(account.id)
    assert stored is not None and stored.refresh_token == rotated.refresh_token
    assert not store.restore_recovery(account.id)  # once
