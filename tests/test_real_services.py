"""The suite runs against PostgreSQL and Redis for real; these fail if either is swapped for SQLite or memory."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from workbench.celery import app


def test_database_is_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_broker_is_redis():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.transport.driver_type == "redis"


@pytest.mark.worker
def test_real_worker_answers_through_redis(celery_worker):
    replies = app.control.ping(destination=[celery_worker.hostname], timeout=5)
    assert replies == [{celery_worker.hostname: {"ok": "pong"}}]


@pytest.mark.worker
def test_worker_uses_one_configuration(celery_worker):
    stats = app.control.inspect(destination=[celery_worker.hostname], timeout=5).conf()
    conf = stats[celery_worker.hostname]
    assert conf["CELERY_TASK_ACKS_LATE"] is True
    assert conf["CELERY_TASK_REJECT_ON_WORKER_LOST"] is True
    assert conf["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1
    assert conf["CELERY_TASK_SERIALIZER"] == "json"
    soft, hard = conf["CELERY_TASK_SOFT_TIME_LIMIT"], conf["CELERY_TASK_TIME_LIMIT"]
    assert soft < hard < conf["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]
