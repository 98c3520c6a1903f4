"""Alembic environment of the service's revisions (recorded in ``alembic_version_service``).

The service's models are declared on the store's ``Base`` (their foreign keys name the store's
tables); only the ``service_`` tables are this chain's to compare."""

from __future__ import annotations

import vidauth.service.models  # noqa: F401 - registers the service's tables on Base.metadata
from vidauth.service.migrate import SERVICE
from vidauth.store.migrate import run_environment
from vidauth.store.models import Base

run_environment(Base.metadata, SERVICE.version_table, lambda name: name.startswith("service_"))
