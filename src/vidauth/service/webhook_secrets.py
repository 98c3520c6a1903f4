"""Which secret signs a notification: the submitting API key's own, else the shared fallback.

Each API key can carry its own webhook secret (``vidauth apikey create --webhook-secret``),
stored encrypted with the token store's key; notifications about a job are signed with the
secret of the key that submitted it, so one tenant cannot sign another's events.
``VIDAUTH_WEBHOOK_SECRET`` signs for keys that have none: fine when every key belongs to one
organisation, wrong with several tenants (each could forge the others' notifications).
"""

from __future__ import annotations

from sqlalchemy import select

from vidauth.logs import register_secret
from vidauth.service.context import ServiceContext
from vidauth.service.models import ApiKey, Webhook


def key_secret(ctx: ServiceContext, api_key_id: int | None) -> str | None:
    """The secret notifications for jobs of ``api_key_id`` are signed with (None: none)."""
    if api_key_id is not None:
        with ctx.db.session() as session:
            stored = session.scalar(select(ApiKey.webhook_secret).where(ApiKey.id == api_key_id))
        if stored:
            secret = ctx.store.cipher.decrypt(stored)
            register_secret(secret)
            return secret
    register_secret(ctx.service.webhook_secret)
    return ctx.service.webhook_secret


def row_secret(ctx: ServiceContext, webhook_id: int) -> str | None:
    """The signing secret of an outbox row."""
    with ctx.db.session() as session:
        api_key_id = session.scalar(select(Webhook.api_key_id).where(Webhook.id == webhook_id))
    return key_secret(ctx, api_key_id)
