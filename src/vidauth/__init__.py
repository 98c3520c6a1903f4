"""vidauth: sign in to video platforms with OAuth2 and upload videos on people's behalf.

The package root stays import-light on purpose: ``vidauth token`` is measured against a bare
``import vidauth``, and every module below is imported only by the commands that need it.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
