"""Platform presets. A new platform is one new module here, registered in ``PROVIDERS``."""

from __future__ import annotations

from vidauth.errors import ConfigError
from vidauth.providers.base import Endpoints, Provider
from vidauth.providers.dot import DOT
from vidauth.providers.generic import GENERIC
from vidauth.providers.ingest import INGEST
from vidauth.providers.oidc import OIDC
from vidauth.providers.omniport import OMNIPORT
from vidauth.providers.panopto import PANOPTO

PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (PANOPTO, INGEST, OMNIPORT, DOT, OIDC, GENERIC)
}


def get_provider(name: str) -> Provider:
    """The preset called ``name``, or a configuration error listing the known ones."""
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"unknown provider {name!r}: use one of {known}") from None


__all__ = ["PROVIDERS", "Endpoints", "Provider", "get_provider"]
