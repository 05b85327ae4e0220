"""Standing users (owner, reviewer, outsider), a project, and a real Celery worker process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import make_project, make_user

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / "korean"
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def owner(db):
    return make_user("owner", is_staff=True, is_superuser=True)


@pytest.fixture
def reviewer(db):
    return make_user("reviewer")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


@pytest.fixture
def project(owner, reviewer):
    return make_project(slug="kor-news", name="Korean news", admins=[owner], reviewers=[reviewer])


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on the test database and the Redis broker, stopped after the test."""
    from django.db import connection

    from workbench.celery import app

    db = connection.settings_dict
    env = os.environ.copy()
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    app.control.purge()
    name = f"test-{os.getpid()}-{time.monotonic_ns()}@%h"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", "default,gpu", "-P", "solo",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", name],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    hostname = name.replace("%h", os.uname().nodename)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{proc.stdout.read()}")
        if app.control.ping(destination=[hostname], timeout=0.5):
            break
    else:
        proc.kill()
        pytest.fail("celery worker did not answer a ping within 60 s")
    proc.hostname = hostname
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
