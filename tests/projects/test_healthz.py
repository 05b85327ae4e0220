"""/healthz, the readiness probe: 200 when the database and the task broker answer, 503 naming what is down, never an
error page. Asked without logging in."""

from __future__ import annotations

import time

from django.db import OperationalError, connection

from tests.generation.test_dispatch import _broker_pools_dropped, broker_down, broker_up  # noqa: F401


def test_healthz_answers_ok_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_answers_503_naming_the_broker_when_it_does_not_answer(client, db, monkeypatch):
    broker_down(monkeypatch)
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 10  # one attempt, no retry loop
    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "ok", "broker": "down"}
    broker_up(monkeypatch)
    assert client.get("/healthz").status_code == 200


def test_healthz_answers_503_naming_the_database_when_it_does_not_answer(client, db, monkeypatch):
    def refuse():
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"  # not Django's error page
    assert response.json() == {"status": "down", "database": "down", "broker": "ok"}
    assert b"5432" not in response.content  # the reason goes to the log, not to an unauthenticated caller
