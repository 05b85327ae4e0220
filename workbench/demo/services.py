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
DEMO_MODEL_DIR_NAME = "workbench-demo-model"
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


def demo_model_dir() -> Path:
    from django.conf import settings

    return settings.DATA_DIR / DEMO_MODEL_DIR_NAME


def demo_model_ensure(*, steps: int = 500, log=print) -> Path | None:
    """Train the demo model once (about two minutes on a CPU); None when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    target = demo_model_dir()
    if not (target / "demo-model.json").exists():
        log(f"Training the demo model into {target} (once; about two minutes on a CPU) ...")
        from workers.demo_model import build

        info = build(target, steps=steps)
        log(f"  demo model ready: loss {info['first_loss']} -> {info['last_loss']} in {info['seconds']} s")
    return target


@transaction.atomic
def demo_generation_ensure(*, project: Project, model_dir: Path):
    """Point the demo project at the demo model and start its first run (once)."""
    from workbench.generation.models import GenerationRun
    from workbench.generation.services import generation_run_create

    project.base_model, project.adapter = str(model_dir / "base"), str(model_dir / "adapter")
    project.base_model_revision = project.adapter_revision = ""
    project.save(update_fields=["base_model", "adapter", "base_model_revision", "adapter_revision"])
    if not GenerationRun.objects.filter(project=project).exists():
        return generation_run_create(project=project, created_by=project.created_by)
    return None
