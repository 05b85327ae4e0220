"""docker-compose.yml describes a real deployment: PostgreSQL, Redis, web, a CPU worker and GPU workers."""

from __future__ import annotations

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
