"""/healthz, the readiness probe: 503 when the database does not answer, 200 otherwise with the broker's state ("degraded"
without it: the web tier still serves), never an error page. Asked without logging in."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from tests.generation.test_dispatch import _broker_pools_dropped, broker_down, broker_up  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_broker_check(monkeypatch):
    from workbench.projects import views

    monkeypatch.setattr(views, "_broker_seen", (0.0, ""))


def test_healthz_answers_ok_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_names_the_broker_when_it_does_not_answer_and_stays_ready(client, db, monkeypatch):
    from workbench.projects import views

    broker_down(monkeypatch)
    response = client.get("/healthz")
    assert response.status_code == 200  # the web tier still serves: no load balancer takes it out for the broker
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "down"}
    checks = []
    monkeypatch.setattr(views, "_broker_check", lambda: checks.append(1) or "ok")
    assert client.get("/healthz").json()["broker"] == "down" and not checks  # the last check is reused for a while
    monkeypatch.setattr(views, "_broker_seen", (0.0, ""))
    broker_up(monkeypatch)
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "broker": "ok"}


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
