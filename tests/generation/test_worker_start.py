"""The test workers' readiness wait: a worker that is slow to start (a loaded machine importing torch) is waited for
while its process lives; one that exits fails at once, with its log."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import WorkerProcess

pytestmark = pytest.mark.worker

SLOW_START_SECONDS = 100  # longer than the fixed 90 s the wait used to allow


def test_slow_starting_worker_is_waited_for(start_worker, tmp_path):
    # Python imports `sitecustomize` before anything else: this one holds the worker back as a busy machine would.
    hook = tmp_path / "slow-start"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"import time\ntime.sleep({SLOW_START_SECONDS})\n")
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    started = time.monotonic()
    worker = start_worker(PYTHONPATH=path)
    assert time.monotonic() - started >= SLOW_START_SECONDS
    assert worker.proc.poll() is None


def test_worker_that_exits_fails_at_once_with_its_log(start_worker, tmp_path):
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failure:
        start_worker(GENERATION_FP8="sometimes")  # refused at startup: the process exits
    assert time.monotonic() - started < 120
    message = str(failure.value)
    assert "exited with status" in message and "GENERATION_FP8='sometimes'" in message


def test_worker_that_never_answers_is_stopped_with_its_log(transactional_db, tmp_path):
    from django.db import connection

    db = connection.settings_dict
    env = os.environ | {"DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    hook = tmp_path / "hang"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys, time\nprint('worker held at startup', flush=True)\ntime.sleep(600)\n")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.raises(pytest.fail.Exception) as failure:
        WorkerProcess(env, tmp_path / "worker.log", ready_timeout=5)
    assert "did not answer a ping within 5 s" in str(failure.value) and "worker held at startup" in str(failure.value)
