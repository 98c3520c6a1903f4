"""``vidauth serve``: the HTTP service a backend (OnTrack / Doubtfire) uses to connect its users'
Panopto accounts and upload videos on their behalf, with workers sharing one database."""

from __future__ import annotations
