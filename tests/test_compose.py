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
