"""`manage.py create_api_token USERNAME`: print the user's API token (created on first use)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print USERNAME's API token for `Authorization: Token <key>`, creating it if needed."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No such user: {username}.")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
