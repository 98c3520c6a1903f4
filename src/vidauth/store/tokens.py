"""The token store: accounts and their encrypted grants, with a claim for single-flight refresh.

A refresh is claimed on the token row in a short write transaction (``refresh_claimed_until`` +
``refresh_claimant``), made over the network with no transaction open, and written in another
short transaction; the database's write lock is never held across an HTTP call. A rotated grant
that cannot be written is kept in an encrypted recovery file (mode 0600) in the home directory
and restored at the next use.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from vidauth.domain.tokens import TokenSet
from vidauth.errors import ErrorCode, StoreError
from vidauth.store.crypto import TokenCipher, create_key_file, read_key_file
from vidauth.store.db import Database
from vidauth.store.grant_recovery import GrantRecoveryFiles
from vidauth.store.models import Account, AuditEvent, Token, utcnow

#: The audit event of a refresh whose answer was lost (vidauth.oauth.manager).
REFRESH_OUTCOME_UNKNOWN = "refresh_outcome_unknown"

log = logging.getLogger("vidauth.store")


class StoreNotWritable(StoreError):
    """The database refused a write (disk full, read-only, connection lost); ``cause`` is the
    driver's one-line reason."""

    default_code = ErrorCode.STORE_UNWRITABLE

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message, cause=cause)
        self.cause = cause


def _finite(value: float | None) -> float | None:
    """A stored expiry, with a non-finite one (from an old, unvalidated answer) as expired."""
    return value if value is None or math.isfinite(value) else 0.0


def new_claimant() -> str:
    """An id for one refresher: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(6).hex()}"


def _claimant_gone(claimant: str) -> bool:
    """True when ``claimant`` was a process on this host that no longer exists."""
    host, _, rest = claimant.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class RefreshClaim:
    """What :meth:`TokenStore.claim_refresh` saw, and whether the caller now holds the claim.

    Not ``held`` and ``busy_until`` set: another refresher holds it until then; not ``held``
    and no ``busy_until``: nothing to refresh (``tokens`` is the current grant, or None).
    """

    status: str
    username: str | None
    tokens: TokenSet | None
    version: int
    held: bool
    busy_until: float | None = None


@dataclass(frozen=True)
class AccountInfo:
    """A signed-in account as shown to people: never a token."""

    id: int
    profile_key: str
    subject: str
    username: str | None
    server: str | None
    client_id: str
    grant_type: str
    status: str
    scope: str | None
    expires_at: float | None
    has_refresh_token: bool
    """A refresh token the store believes usable (False after a refresh whose answer was
    lost: under strict rotation it may have been spent)."""
    last_login_at: datetime
    refresh_outcome_unknown: bool = False
    """The last refresh was sent and its answer lost: sign in again if the next one fails."""


class LockedGrant:
    """An account's grant read under the store's write lock; changes commit together."""

    def __init__(self, store: TokenStore, session: Session, account: Account, row: Token | None):
        self._store = store
        self._session = session
        self.account = account
        self._row = row
        self.tokens = store._decode(row) if row is not None else None

    @property
    def version(self) -> int:
        """The stored grant's version (bumped by every write)."""
        return self._row.version if self._row is not None else 0

    def replace(self, tokens: TokenSet, event: str = "refreshed") -> None:
        """Store ``tokens`` as the account's grant (committed when the lock is released)."""
        self._row = self._store._write_row(self._session, self.account.id, tokens)
        self.tokens = tokens
        self._session.add(AuditEvent(account_id=self.account.id, event=event))
        self._session.flush()


class TokenStore:
    """Accounts and encrypted tokens in a SQLAlchemy database."""

    def __init__(self, db: Database, cipher: TokenCipher, home: Path | None = None) -> None:
        self.db = db
        self.cipher = cipher
        #: The files in ``home`` a refreshed grant is kept in when the database cannot take it
        #: (None without a home: no recovery files).
        self.recovery = None if home is None else GrantRecoveryFiles(home, db.url)

    @classmethod
    def open(cls, db: Database, home: Any, keys: tuple[Any, ...]) -> TokenStore:
        """Migrate ``db`` and pick the key: configured keys, else the key file in ``home``.

        The key file is generated only while the store holds no tokens; otherwise a missing key
        is an error, never a silent new key that would orphan the stored grants.
        """
        home = Path(home)
        secure_home(home)
        db.migrate()
        if keys:
            return cls(db, TokenCipher([k.value.encode() for k in keys]), home)
        key = read_key_file(home)
        if key is None:
            with db.session() as session:
                count = session.scalar(select(func.count()).select_from(Token)) or 0
            if count:
                raise StoreError(
                    f"the store holds encrypted tokens but there is no key: set "
                    f"VIDAUTH_SECRET_KEY or restore {home}/secret.key",
                    reason="no_key",
                )
            key = create_key_file(home)
        return cls(db, TokenCipher([key]), home)

    # -- reading -------------------------------------------------------------------------

    def _decode(self, row: Token) -> TokenSet:
        return TokenSet(
            access_token=self.cipher.decrypt(row.access_token),
            refresh_token=self.cipher.decrypt(row.refresh_token) if row.refresh_token else None,
            id_token=self.cipher.decrypt(row.id_token) if row.id_token else None,
            token_type=row.token_type,
            scope=row.scope,
            expires_at=_finite(row.expires_at),
        )

    def _info(self, account: Account, row: Token | None) -> AccountInfo:
        return AccountInfo(
            id=account.id,
            profile_key=account.profile_key,
            subject=account.subject,
            username=account.username,
            server=account.server,
            client_id=account.client_id,
            grant_type=account.grant_type,
            status=account.status,
            scope=row.scope if row else None,
            expires_at=_finite(row.expires_at) if row else None,
            has_refresh_token=bool(row and row.refresh_token and not row.refresh_outcome_unknown),
            last_login_at=account.last_login_at,
            refresh_outcome_unknown=bool(row and row.refresh_outcome_unknown),
        )

    def list_accounts(self, profile_key: str | None = None) -> list[AccountInfo]:
        """Accounts (newest sign-in first), optionally of one profile."""
        with self.db.session() as session:
            query = select(Account, Token).outerjoin(Token, Token.account_id == Account.id)
            if profile_key is not None:
                query = query.where(Account.profile_key == profile_key)
            query = query.order_by(Account.last_login_at.desc(), Account.id.desc())
            return [self._info(a, t) for a, t in session.execute(query).all()]

    def find_account(self, profile_key: str, subject: str | None = None) -> AccountInfo | None:
        """The account ``subject`` of a profile, or its most recent sign-in."""
        for info in self.list_accounts(profile_key):
            if subject is None or info.subject == subject or info.username == subject:
                return info
        return None

    def load_tokens(self, account_id: int) -> TokenSet | None:
        """The account's grant, decrypted (no lock: a consistent snapshot)."""
        with self.db.session() as session:
            row = session.get(Token, account_id)
            return self._decode(row) if row is not None else None

    def account_status(self, account_id: int) -> str | None:
        """``active`` / ``needs_signin``, or None when the account is gone."""
        with self.db.session() as session:
            account = session.get(Account, account_id)
            return account.status if account else None

    # -- writing -------------------------------------------------------------------------

    def _write_row(self, session: Session, account_id: int, tokens: TokenSet) -> Token:
        row = session.get(Token, account_id)
        if row is None:
            row = Token(account_id=account_id, version=0)
            session.add(row)
        row.access_token = self.cipher.encrypt(tokens.access_token)
        row.refresh_token = (
            self.cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None
        )
        row.id_token = self.cipher.encrypt(tokens.id_token) if tokens.id_token else None
        row.token_type = tokens.token_type
        row.scope = tokens.scope
        row.expires_at = tokens.expires_at
        row.version = (row.version or 0) + 1
        row.updated_at = utcnow()
        row.refresh_outcome_unknown = False  # a new grant: its outcome is known
        return row

    def save_grant(
        self,
        *,
        profile_key: str,
        subject: str,
        username: str | None,
        server: str | None,
        client_id: str,
        tokens: TokenSet,
        grant_type: str = "authorization_code",
    ) -> AccountInfo:
        """Create or update the account and store its new grant in one transaction."""
        with self.db.write_session() as session:
            account = session.scalars(
                select(Account).where(
                    Account.profile_key == profile_key, Account.subject == subject
                )
            ).first()
            if account is None:
                account = Account(profile_key=profile_key, subject=subject, client_id=client_id)
                session.add(account)
            account.username = username
            account.server = server
            account.grant_type = grant_type
            account.status = "active"
            account.last_login_at = utcnow()
            session.flush()
            row = self._write_row(session, account.id, tokens)
            session.add(AuditEvent(account_id=account.id, event="connected", detail=grant_type))
            session.flush()
            return self._info(account, row)

    # -- single-flight refresh ------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A short write transaction whose database failures become StoreNotWritable."""
        try:
            with self.db.write_session() as session:
                yield session
        except DBAPIError as exc:
            cause = str(exc.orig or exc).splitlines()[0][:200]
            raise StoreNotWritable(
                f"cannot write to the store {self.db.safe_url}: {cause}", cause=cause
            ) from None

    def _locked_rows(
        self, session: Session, account_id: int
    ) -> tuple[Account | None, Token | None]:
        account_query = select(Account).where(Account.id == account_id)
        token_query = select(Token).where(Token.account_id == account_id)
        if not self.db.is_sqlite:
            account_query = account_query.with_for_update()
            token_query = token_query.with_for_update()
        return session.scalars(account_query).first(), session.scalars(token_query).first()

    def _locked_account(self, session: Session, account_id: int) -> tuple[Account, Token | None]:
        """:meth:`_locked_rows` of an account that must still exist."""
        account, row = self._locked_rows(session, account_id)
        if account is None:
            raise StoreError(f"account {account_id} no longer exists: sign in again")
        return account, row

    def claim_refresh(
        self,
        account_id: int,
        claimant: str,
        lease: float,
        wanted: Callable[[TokenSet | None, str], bool],
    ) -> RefreshClaim:
        """Claim the account's refresh for ``lease`` seconds if ``wanted(tokens, status)`` says
        a refresh is still needed and nobody else holds a live claim (one short transaction)."""
        with self._writing() as session:
            account, row = self._locked_account(session, account_id)
            tokens = self._decode(row) if row is not None else None
            version = row.version if row is not None else 0
            seen = RefreshClaim(account.status, account.username, tokens, version, held=False)
            if row is None or not wanted(tokens, account.status):
                return seen
            now = time.time()
            other = row.refresh_claimant
            if (
                other is not None
                and other != claimant
                and (row.refresh_claimed_until or 0.0) > now
                and not _claimant_gone(other)
            ):
                return replace(seen, busy_until=row.refresh_claimed_until)
            row.refresh_claimed_until = now + lease
            row.refresh_claimant = claimant
        # Before the refresh is sent: room to keep its answer even if the disk fills meanwhile.
        if self.recovery is not None:
            self.recovery.prepare_slot(account_id)
        return replace(seen, held=True)

    def finish_refresh(
        self, account_id: int, claimant: str, tokens: TokenSet | None, event: str | None
    ) -> None:
        """Store the refreshed ``tokens`` (if any) and release ``claimant``'s claim, in one
        short transaction."""
        with self._writing() as session:
            _, row = self._locked_rows(session, account_id)
            if tokens is not None:
                row = self._write_row(session, account_id, tokens)
            if row is not None and row.refresh_claimant == claimant:
                row.refresh_claimed_until = None
                row.refresh_claimant = None
            if event is not None:
                session.add(AuditEvent(account_id=account_id, event=event))

    # -- recovery files ---------------------------------------------------------------------

    def save_recovery(
        self, account_id: int, base_version: int, claimant: str, tokens: TokenSet
    ) -> Path | None:
        """Keep ``tokens`` encrypted (store key, mode 0600) for :meth:`restore_recovery`, in
        the account's slot and, if there is room, a file of its own; None when both fail."""
        if self.recovery is None:
            return None
        record = {"base_version": base_version, "claimant": claimant, "tokens": asdict(tokens)}
        return self.recovery.keep(account_id, self.cipher.encrypt(json.dumps(record)))

    def restore_recovery(self, account_id: int) -> bool:
        """Put a kept grant back into the database; True when one was restored.

        It is restored only over the grant it replaced (same version); a newer sign-in wins and
        the file is dropped. The file stays while the database still cannot be written.
        """
        if self.recovery is None:
            return False
        blob = self.recovery.read(account_id)
        if blob is None:
            return False
        try:
            record = json.loads(self.cipher.decrypt(blob))
            tokens = TokenSet(**record["tokens"])
            base_version = int(record["base_version"])
            claimant = str(record["claimant"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring the unreadable recovery file of account %s", account_id)
            self.recovery.discard(account_id)
            return False
        restored = False
        with self._writing() as session:
            _, row = self._locked_rows(session, account_id)
            if row is not None and row.version == base_version:
                row = self._write_row(session, account_id, tokens)
                if row.refresh_claimant == claimant:
                    row.refresh_claimed_until = None
                    row.refresh_claimant = None
                session.add(AuditEvent(account_id=account_id, event="recovered"))
                restored = True
        self.recovery.discard(account_id)
        return restored

    @contextmanager
    def lock_grant(self, account_id: int) -> Iterator[LockedGrant]:
        """Hold the account's grant under the store's write lock (SQLite: the database's
        write lock via BEGIN IMMEDIATE; PostgreSQL: a row lock), re-reading it once held.

        For short, local changes only: a refresh uses :meth:`claim_refresh`, so that no lock is
        held across a network call."""
        with self.db.write_session() as session:
            account, row = self._locked_account(session, account_id)
            yield LockedGrant(self, session, account, row)

    def set_status(
        self, account_id: int, status: str, event: str, detail: str | None = None
    ) -> None:
        """Change an account's status and record why."""
        with self.db.write_session() as session:
            account = session.get(Account, account_id)
            if account is not None:
                account.status = status
                session.add(AuditEvent(account_id=account_id, event=event, detail=detail))

    def set_username(self, account_id: int, username: str) -> None:
        """Record the name shown for an account (learned after it was stored)."""
        with self.db.write_session() as session:
            account = session.get(Account, account_id)
            if account is not None:
                account.username = username

    def audit(self, account_id: int | None, event: str, detail: str | None = None) -> None:
        """Record an event (never with token values). ``refresh_outcome_unknown`` is also
        recorded on the token row, until the next grant is stored."""
        with self.db.session() as session:
            session.add(AuditEvent(account_id=account_id, event=event, detail=detail))
            if event == REFRESH_OUTCOME_UNKNOWN and account_id is not None:
                session.execute(
                    update(Token)
                    .where(Token.account_id == account_id)
                    .values(refresh_outcome_unknown=True)
                )

    def delete_account(self, account_id: int) -> None:
        """Delete the account's tokens and the account; the audit trail keeps the event."""
        with self.db.write_session() as session:
            session.add(
                AuditEvent(account_id=None, event="logged_out", detail=f"account {account_id}")
            )
            session.execute(delete(Token).where(Token.account_id == account_id))
            session.execute(delete(Account).where(Account.id == account_id))

    @staticmethod
    def forget_all(db: Database) -> int:
        """Delete every account and grant without decrypting anything (works with a lost key).

        Returns how many accounts were deleted.
        """
        db.migrate()
        with db.write_session() as session:
            count = session.scalar(select(func.count()).select_from(Account)) or 0
            session.execute(delete(Token))
            session.execute(delete(Account))
            session.add(AuditEvent(account_id=None, event="logged_out", detail=f"all ({count})"))
        return int(count)

    def audit_events(self, account_id: int | None = None) -> list[tuple[str, str | None]]:
        """(event, detail) pairs, oldest first."""
        with self.db.session() as session:
            query = select(AuditEvent.event, AuditEvent.detail).order_by(AuditEvent.id)
            if account_id is not None:
                query = query.where(AuditEvent.account_id == account_id)
            return [(e, d) for e, d in session.execute(query).all()]


def secure_home(home: Path) -> None:
    """Create ``home`` mode 0700, or tighten an existing one that others can read."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = home.stat().st_mode & 0o777
        if mode & 0o077 and home.stat().st_uid == os.getuid():
            os.chmod(home, 0o700)
            log.info("tightened %s from %o to 700 (it holds the store and its key)", home, mode)
    except OSError:
        return  # reported where the home is used (database, key file) and by `doctor`
