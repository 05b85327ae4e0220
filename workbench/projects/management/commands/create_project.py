"""`manage.py create_project`: scripted project setup through the same service as the admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workbench.projects.presets import PRESETS
from workbench.projects.services import ProjectAlreadyExists, project_create


class Command(BaseCommand):
    help = "Create a project from an adapter preset, with admins and reviewers (users must exist)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--adapter", choices=sorted(PRESETS), default="simple-qa")
        parser.add_argument("--admin", action="append", default=[], metavar="USERNAME", help="at least one")
        parser.add_argument("--reviewer", action="append", default=[], nargs="+", metavar="USERNAME")

    def handle(self, *args, slug, name, description, adapter, admin, reviewer, **options):
        if not admin:
            raise CommandError(
                "A project needs at least one admin (--admin USERNAME): without one no page or API reaches it, only the "
                "Django admin. Nothing was created."
            )
        reviewer_names = [username for group in reviewer for username in group]
        users = self._users(admin + reviewer_names)
        try:
            project = project_create(
                slug=slug,
                name=name,
                description=description,
                adapter_preset=adapter,
                admins=[users[u] for u in admin],
                reviewers=[users[u] for u in reviewer_names],
            )
        except ProjectAlreadyExists as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        except ValidationError as exc:
            raise CommandError("; ".join(_messages(exc))) from None
        self.stdout.write(self.style.SUCCESS(f"Created project {project.slug!r} ({project.get_adapter_preset_display()})."))

    def _users(self, usernames: list[str]) -> dict:
        User = get_user_model()
        found = {u.get_username(): u for u in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": usernames})}
        missing = sorted(set(usernames) - set(found))
        if missing:
            raise CommandError(
                f"No such user: {', '.join(missing)}. Create the users first (manage.py createsuperuser or the admin)."
            )
        return found


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "message_dict"):
        return [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
    return list(exc.messages)
