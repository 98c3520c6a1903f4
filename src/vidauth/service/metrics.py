"""Prometheus ``/metrics``: read from the shared database at scrape time, so every instance
reports the same cluster-wide figures whichever process did the work."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from vidauth.service.context import ServiceContext
from vidauth.service.jobs import JobQueue
from vidauth.service.models import JobState, Webhook
from vidauth.store.models import AuditEvent

log = logging.getLogger("vidauth.service.metrics")


class ServiceCollector(Collector):
    """Uploads by state, bytes uploaded, token refreshes and refresh failures, webhooks."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vidauth_database_up", "1 when the database answered the scrape")
        try:
            queue = JobQueue(self.ctx)
            counts = queue.counts()
            uploaded = queue.bytes_uploaded()
            with self.ctx.db.session() as session:
                events = dict(
                    session.execute(
                        select(AuditEvent.event, func.count())
                        .where(AuditEvent.event.in_(("refreshed", "refresh_failed")))
                        .group_by(AuditEvent.event)
                    ).all()
                )
                pending_hooks = session.scalar(
                    select(func.count())
                    .select_from(Webhook)
                    .where(Webhook.delivered_at.is_(None), Webhook.failed.is_(False))
                )
        except Exception as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        uploads = GaugeMetricFamily("vidauth_uploads", "Uploads by state", labels=["state"])
        for state in JobState.ALL:
            uploads.add_metric([state], counts.get(state, 0))
        yield uploads
        yield CounterMetricFamily(
            "vidauth_uploaded_bytes", "Bytes acknowledged by the upload target", value=uploaded
        )
        yield CounterMetricFamily(
            "vidauth_token_refreshes", "Access-token refreshes", value=events.get("refreshed", 0)
        )
        yield CounterMetricFamily(
            "vidauth_token_refresh_failures",
            "Refreshes refused (the user must connect again)",
            value=events.get("refresh_failed", 0),
        )
        yield GaugeMetricFamily(
            "vidauth_webhooks_pending", "Notifications not yet delivered", value=pending_hooks or 0
        )


class Metrics:
    """A registry holding the service collector."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServiceCollector(ctx))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
