"""OAuth2 / OpenID Connect client flows, organized by the spec each implements."""

from __future__ import annotations
