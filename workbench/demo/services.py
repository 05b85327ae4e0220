"""First-start setup for a single machine: an admin account, a demo project and the sample Korean documents."""
from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from workbench.documents.services import source_document_create
from workbench.projects.models import Project
from workbench.projects.services import project_create

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEMO_SLUG = "demo"


@transaction.atomic
def admin_account_ensure(*, username: str = "admin") -> str | None:
    """Create the superuser once; return its generated password, or None when it already exists."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email="", password=password)
    return password


@transaction.atomic
def demo_project_ensure(*, admin_username: str = "admin") -> Project:
    """The demo project with the sample documents; idempotent (documents are keyed by content hash)."""
    admin = get_user_model().objects.get(username=admin_username)
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        project = project_create(
            slug=DEMO_SLUG,
            name="Demo: Korean sample documents",
            description="Sample documents written for the workbench. Generation here uses the demo model.",
            created_by=admin,
            admins=[admin],
        )
    for path in sorted(SAMPLES_DIR.glob("*.md")):
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        title = text.splitlines()[0].lstrip("# ").strip()
        source_document_create(
            project=project, text=text, title=title, origin_filename=path.name, origin_size=len(raw)
        )
    return project
