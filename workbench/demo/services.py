"""First-start setup for a single machine: an admin account, a demo project and the sample Korean documents."""

from __future__ import annotations

import secrets
import shutil
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
        source_document_create(project=project, text=text, title=title, origin_filename=path.name, origin_size=len(raw))
    return project


def demo_model_dir() -> Path:
    from django.conf import settings

    return settings.DATA_DIR / DEMO_MODEL_DIR_NAME


def demo_model_ensure(*, steps: int = 500, log=print) -> Path | None:
    """The demo model in the data dir: trained once per machine (a few minutes on a CPU) and kept in the machine's
    cache, so a new data dir or a fresh clone copies it in seconds. None when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    target = demo_model_dir()
    if (target / "demo-model.json").exists():
        return target
    cached = demo_model_cache_dir(steps=steps)
    if (cached / "demo-model.json").exists():
        log(f"Copying the demo model trained earlier on this machine ({cached}) ...")
        _demo_model_install(cached, target)
        return target
    log(f"Training the demo model (once per machine; a few minutes on a CPU, progress below) into {target} ...")
    from workers.demo_model import build

    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    info = build(building, steps=steps, progress=log)
    _demo_model_install(building, target)
    shutil.rmtree(building, ignore_errors=True)
    log(f"  demo model ready: loss {info['first_loss']} -> {info['last_loss']} in {info['seconds']} s")
    try:
        if not (cached / "demo-model.json").exists():
            _demo_model_install(target, cached)
            log(f"  kept in {cached} for later starts on this machine")
    except OSError as exc:  # a read-only home: the start works, the next data dir trains again
        log(f"  could not keep a copy in {cached}: {exc}")
    return target


def demo_model_cache_dir(*, steps: int, seed: int = 0) -> Path:
    """`WORKBENCH_CACHE_DIR` (else `$XDG_CACHE_HOME` or ~/.cache, then genstruct-workbench), one folder per version
    of the demo model: its code, the sample documents, the steps and the seed."""
    import hashlib
    import os

    from workers import demo_model, tiny

    root = os.environ.get("WORKBENCH_CACHE_DIR") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genstruct-workbench"
    )
    digest = hashlib.sha256(f"{steps}:{seed}".encode())
    for path in [Path(demo_model.__file__), Path(tiny.__file__), *sorted(SAMPLES_DIR.glob("*.md"))]:
        digest.update(path.read_bytes())
    return Path(root) / f"demo-model-{digest.hexdigest()[:12]}"


def _demo_model_install(source: Path, target: Path) -> None:
    """Copy a trained demo model to `target` (whole or not at all) and point its adapter at the base beside it."""
    import json

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, staging)
    config_path = staging / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(target / "base")
    config_path.write_text(json.dumps(config, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


@transaction.atomic
def demo_generation_ensure(*, project: Project, model_dir: Path):
    """Point the demo project at the demo model and start its first run (once)."""
    from workbench.generation.models import GenerationRun
    from workbench.generation.services import generation_run_create

    project.base_model, project.adapter = str(model_dir / "base"), str(model_dir / "adapter")
    project.base_model_revision = project.adapter_revision = ""
    project.adapter_preset = "demo"  # labelled as what it runs, wherever the preset is shown (its prompt is simple-qa's)
    project.save(update_fields=["base_model", "adapter", "base_model_revision", "adapter_revision", "adapter_preset"])
    if not GenerationRun.objects.filter(project=project).exists():
        return generation_run_create(project=project, created_by=project.created_by)
    return None
