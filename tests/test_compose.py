"""docker-compose.yml describes a real deployment: PostgreSQL, Redis, web, a CPU worker and GPU workers."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ROOT


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_names_every_service():
    services = load()["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-gpu"} <= set(services)


def test_web_runs_gunicorn_after_migrations_and_uses_postgres_and_redis():
    services = load()["services"]
    web = services["web"]
    command = " ".join(web["command"]) if isinstance(web["command"], list) else web["command"]
    assert "migrate" in command and "gunicorn" in command
    for name in ("web", "worker-cpu", "worker-gpu"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")


def test_gpu_worker_takes_one_gpu_on_the_gpu_queue():
    gpu = load()["services"]["worker-gpu"]
    command = " ".join(gpu["command"]) if isinstance(gpu["command"], list) else gpu["command"]
    assert "-Q gpu" in command and "--concurrency 1" in command
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert devices[0]["count"] == 1


def test_volumes_for_database_models_and_exports():
    compose = load()
    assert {"postgres-data", "model-cache", "media"} <= set(compose["volumes"])
    gpu_volumes = " ".join(compose["services"]["worker-gpu"]["volumes"])
    assert "model-cache:" in gpu_volumes


def test_web_is_reached_only_through_the_proxy_whose_headers_it_trusts():
    """The compose defaults trust X-Forwarded-Proto and X-Forwarded-For (one proxy), so the port is published on the
    loopback address only: a client that reached port 8000 directly could otherwise claim HTTPS, or make every login
    look as if it came from the proxy (one lockout for everyone)."""
    compose = load()
    env = compose["services"]["web"]["environment"]
    assert env["TRUST_X_FORWARDED_PROTO"].endswith(":-1}") and env["LOGIN_PROXY_COUNT"] == "${LOGIN_PROXY_COUNT:-1}"
    (port,) = compose["services"]["web"]["ports"]
    assert port == "${WEB_BIND:-127.0.0.1}:8000:8000"


def test_the_image_has_the_mounted_paths_owned_by_its_user():
    """A named volume mounted on a path the image lacks is created root-owned; the containers run as `workbench`."""
    compose = load()
    dockerfile = (ROOT / "Dockerfile").read_text()
    mounted = {
        volume.split(":")[1]
        for name in ("web", "worker-cpu", "worker-gpu")
        for volume in compose["services"][name].get("volumes", [])
    }
    assert mounted == {"/data/media", "/models"}
    assert "mkdir -p /data/media /models && chown -R workbench /data /models" in dockerfile
    assert dockerfile.index("chown -R workbench") < dockerfile.index("USER workbench")


def test_the_images_static_files_serve_the_production_settings(tmp_path):
    """The image collects the static files at build time and serves them with DEBUG off, through the manifest storage:
    the build's collectstatic must write that manifest, or every page answers 500 ("Missing staticfiles manifest
    entry")."""
    import os
    import subprocess
    import sys

    dockerfile = (ROOT / "Dockerfile").read_text()
    (line,) = [line for line in dockerfile.splitlines() if line.startswith("RUN ") and "collectstatic" in line]
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}}
    env = clean | {"STATIC_ROOT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", line.removeprefix("RUN ")], cwd=ROOT, env=env, check=True, timeout=300)
    web = load()["services"]["web"]["environment"]
    assert web["DEBUG"] == "0"
    page = subprocess.run(
        [sys.executable, "-c", RENDER_LOGIN_PAGE],
        cwd=ROOT,
        env=clean | {"DEBUG": web["DEBUG"], "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "testserver", "STATIC_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert page.returncode == 0, page.stderr[-3000:]
    status, icon = page.stdout.split()
    assert status == "200" and icon.startswith("/static/img/favicon.") and icon != "/static/img/favicon.svg"


RENDER_LOGIN_PAGE = """
import os, re
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
django.setup()
from django.test import Client
response = Client().get("/accounts/login/", secure=True)
print(response.status_code, re.search(r'rel="icon" href="([^"]+)"', response.content.decode()).group(1))
"""
