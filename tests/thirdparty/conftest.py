"""Fixtures for tests against real third-party OAuth2/OIDC servers (see servers.py).

Elsewhere in the suite, import them the same way (or add "tests.thirdparty.servers" to the root
conftest's ``pytest_plugins``).
"""

from tests.thirdparty.servers import dot_server, oidc_provider_server

__all__ = ["dot_server", "oidc_provider_server"]
