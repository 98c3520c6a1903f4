#!/usr/bin/env python
"""Django OAuth Toolkit on loopback for vidauth's third-party tests (see dotserver/settings.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotserver.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
