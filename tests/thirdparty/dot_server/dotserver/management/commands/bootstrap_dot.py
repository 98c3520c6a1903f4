"""Create (or reset) the test user and the confidential authorization-code application."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from oauth2_provider.models import get_application_model


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        env = os.environ.get
        parser.add_argument("--username", default=env("DOT_USERNAME", "alice"))
        parser.add_argument("--password", default=env("DOT_PASSWORD", "alice-dot-password"))
        parser.add_argument("--client-id", default=env("DOT_CLIENT_ID", "vidauth-dot-client"))
        parser.add_argument(
            "--client-secret", default=env("DOT_CLIENT_SECRET", "vidauth-dot-client-secret")
        )
        parser.add_argument(
            "--redirect-uri",
            default=env("DOT_REDIRECT_URI"),
            help="exact redirect URI(s), space-separated (env DOT_REDIRECT_URI)",
        )

    def handle(self, *args, **opts):
        if not opts["redirect_uri"]:
            raise SystemExit("bootstrap_dot: --redirect-uri or DOT_REDIRECT_URI is required")
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=opts["username"], defaults={"email": f"{opts['username']}@example.test"}
        )
        user.set_password(opts["password"])
        user.save()

        Application = get_application_model()
        Application.objects.filter(client_id=opts["client_id"]).delete()
        # client_secret is given in clear; DOT hashes it on save (hash_client_secret=True, its
        # default), and clients authenticate with the clear value.
        Application.objects.create(
            name="vidauth test client",
            client_id=opts["client_id"],
            client_secret=opts["client_secret"],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=opts["redirect_uri"],
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=False,
            user=user,
        )
        self.stdout.write(f"bootstrap_dot: user {user.username!r}, client {opts['client_id']!r}")
