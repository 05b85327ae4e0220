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
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = FIXTURES / "korean"  # real Korean documents; sources and licences in tests/fixtures/README.md
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


class WorkerProcess:
    """A real `celery worker` process on the test database and the Redis broker.

    Ready once it answers a ping. On a loaded machine a worker can take minutes to import Django, torch and
    transformers, so the wait lasts as long as the process is alive, up to `ready_timeout` (WORKER_READY_TIMEOUT, 600 s
    by default); a process that exits fails at once. Either failure shows the worker's log."""

    def __init__(self, env: dict[str, str], log_path: Path, *, ready_timeout: float | None = None):
        from workbench.celery import app

        self.name = f"test-{os.getpid()}-{time.monotonic_ns()}@%h"
        self.hostname = self.name.replace("%h", os.uname().nodename)
        self.log_path = log_path
        self.log = open(log_path, "a")
        self.log_start = log_path.stat().st_size  # one log file may hold several workers of a test
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workbench",
                "worker",
                "-Q",
                "default,gpu",
                "-P",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "-n",
                self.name,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(app, ready_timeout)
        except BaseException:
            # Whatever stopped the wait (a failed ping, the broker unreachable, Ctrl-C), no worker outlives its test:
            # an orphan would go on taking the next tests' tasks from the same queue.
            self.kill()
            if not self.log.closed:
                self.log.close()
            raise

    def _wait_until_ready(self, app, ready_timeout: float | None) -> None:
        timeout = ready_timeout if ready_timeout is not None else float(os.environ.get("WORKER_READY_TIMEOUT", "600"))
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                pytest.fail(
                    f"celery worker exited with status {self.proc.returncode} before it was ready; its log:\n{self.log_text()}"
                )
            # A generous reply window: a busy 2-core machine can take seconds to answer a broadcast.
            if app.control.ping(destination=[self.hostname], timeout=2.0):
                return
            if time.monotonic() - started > timeout:
                break
        self.kill()
        self.log.close()
        pytest.fail(f"celery worker did not answer a ping within {timeout:.0f} s while running; its log:\n{self.log_text()}")

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            f.seek(self.log_start)
            return f.read()[-20_000:]

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no chance to ack, requeue or clean up."""
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran real workers shows their logs: a worker's side of a failure is otherwise lost."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when == "call":
        for worker in getattr(item, "worker_processes", ()):
            try:
                text = worker.log_text()
            except OSError as exc:
                text = f"(its log could not be read: {exc})"
            report.sections.append((f"worker {worker.hostname} (exit status {worker.proc.poll()}), its log", text))


@pytest.fixture
def start_worker(transactional_db, tmp_path, request):
    """Start real worker processes (extra environment per call); all are stopped after the test."""
    from django.db import connection

    from workbench.celery import app

    db = connection.settings_dict
    base_env = os.environ.copy()
    base_env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    base_env["PYTHONUNBUFFERED"] = "1"
    app.control.purge()
    workers: list[WorkerProcess] = []
    request.node.worker_processes = workers

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess(base_env | env, tmp_path / "worker.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.control.purge()


@pytest.fixture
def celery_worker(start_worker):
    return start_worker()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny Llama-3-shaped base model and a rank-16 LoRA on all linear layers, built locally once per session."""
    from workers.tiny import build_base_model, build_lora, build_tokenizer

    root = tmp_path_factory.mktemp("tiny-model")
    texts = [(SHARED_DATA / "constitution.txt").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "workbench" / "demo" / "samples").glob("*.md"))]
    build_tokenizer(texts, root / "tokenizer")
    build_base_model(root / "tokenizer", root / "base", max_positions=1024)
    build_lora(root / "base", root / "adapter")
    return {"base": str(root / "base"), "adapter": str(root / "adapter"), "root": root}
