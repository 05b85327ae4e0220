"""Dispatch of generation runs: a broker that does not answer, lost messages, workers that die (heartbeat and the
periodic sweep sent by Celery beat), and live batches that must never run twice. Real PostgreSQL, Redis, Celery worker
and beat processes, the tiny model."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD, ROOT
from tests.generation.test_worker_runs import assert_exactly_once, project_with_chunks, run_state, wait_for
from workbench.celery import app
from workbench.generation import services as generation
from workbench.generation.models import BatchStatus, Generation, GenerationBatch, RunStatus

# Broker time limits left at their defaults: a killed worker's message comes back only after 3,600 s.
WORKER_ENV = {"MODEL_DEVICE": "cpu", "GENERATION_BACKEND": "batched", "GENERATION_HEARTBEAT_SECONDS": "1"}


def dead_broker_url() -> str:
    """A Redis URL on a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def drop_broker_pools() -> None:
    """Forget the app's pooled broker connections (as Celery does after a fork): a pool made while CELERY_BROKER_URL
    named the dead broker would otherwise keep sending there after the test points it back."""
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


def broker_down(monkeypatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", dead_broker_url())  # what the Celery app reads first
    drop_broker_pools()


def broker_up(monkeypatch) -> None:
    monkeypatch.undo()
    drop_broker_pools()


@pytest.fixture(autouse=True)
def _broker_pools_dropped():
    drop_broker_pools()
    yield
    drop_broker_pools()  # the next test makes its pool once its own environment is in place


def redis():
    return app.connection_for_write().default_channel.client


def gpu_message_batch_ids() -> list[int]:
    """The batch ids of the generation messages on the gpu queue (a run's model check travels there too)."""
    ids = []
    for raw in redis().lrange("gpu", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == generation.GPU_TASK:
            ids.append(json.loads(base64.b64decode(message["body"]))[0][0])
    return sorted(ids)


@pytest.fixture
def start_beat(start_worker, tmp_path):
    """A real `celery beat` process (as compose's `beat` service), stopped after the test."""
    procs = []

    def start(**env: str) -> subprocess.Popen:
        log = open(tmp_path / "beat.log", "a")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workbench",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(tmp_path / "beat-schedule"),
            ],
            cwd=ROOT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append((proc, log))
        deadline = time.monotonic() + 90
        while "beat: Starting" not in (tmp_path / "beat.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("celery beat did not start:\n" + (tmp_path / "beat.log").read_text())
            time.sleep(0.3)
        return proc

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_start_with_the_broker_down_fails_to_dispatch_and_retry_sends_it(start_worker, owner, tiny_model, client, monkeypatch):
    project, chunks = project_with_chunks(owner, tiny_model, 3)
    client.login(username=owner.username, password=PASSWORD)

    broker_down(monkeypatch)
    response = client.post(reverse("generation:start", args=[project.slug]))
    run = project.runs.get()
    assert response.status_code == 302 and response["Location"] == reverse("generation:detail", args=[project.slug, run.pk])
    assert run.status == RunStatus.DISPATCH_FAILED
    assert "the task broker did not answer" in run.error and "nothing was lost" in run.error
    assert not GenerationBatch.objects.filter(run=run, dispatched_at__isnull=False).exists()
    page = client.get(response["Location"]).content.decode()
    assert f"Run {run.pk} was created but not started." in page  # the message
    assert 'id="run-dispatch-error"' in page and "Failed to dispatch" in page
    assert 'id="run-retry-dispatch"' in page
    # Still down: retrying says so and changes nothing.
    page = client.post(reverse("generation:retry", args=[project.slug, run.pk]), follow=True).content.decode()
    assert "the task broker did not answer" in page and run_state(run.pk).status == RunStatus.DISPATCH_FAILED

    broker_up(monkeypatch)  # the broker answers again
    start_worker(**WORKER_ENV)
    page = client.post(reverse("generation:retry", args=[project.slug, run.pk]), follow=True).content.decode()
    assert f"Run {run.pk}: its batches are queued again" in page
    run = wait_for(lambda: (r := run_state(run.pk)).status in {"succeeded", "failed"} and r, what="run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.error == ""
    assert_exactly_once(run, chunks, 2)


def test_run_page_in_the_browser_shows_the_failed_dispatch_and_retries_it(
    live_server, transactional_db, owner, tiny_model, monkeypatch
):
    from tests.browser import chromium_page

    project, _ = project_with_chunks(owner, tiny_model, 2)
    redis().delete("gpu")
    base = live_server.url
    with chromium_page() as page:
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", owner.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#project-list")
        page.goto(f"{base}/p/{project.slug}/runs/")
        broker_down(monkeypatch)
        page.click("#start-run")
        page.wait_for_selector("#run-progress[data-final]")
        run = project.runs.get()
        assert page.get_attribute("#run-progress", "data-final") == "dispatch_failed"
        assert page.inner_text("#run-status") == "Failed to dispatch"
        assert f"Run {run.pk} was created but not started." in page.inner_text(".messages .error")
        assert "the task broker did not answer" in page.inner_text("#run-dispatch-error")

        broker_up(monkeypatch)
        page.click("#run-retry-dispatch")
        page.wait_for_selector(".messages .success")
        assert f"Run {run.pk}: its batches are queued again" in page.inner_text(".messages")
        assert page.inner_text("#run-status") == "Queued" and page.query_selector("#run-dispatch-error") is None
        assert page.csp_violations == []
    assert run_state(run.pk).status == RunStatus.QUEUED
    assert gpu_message_batch_ids() == list(GenerationBatch.objects.filter(run=run).values_list("pk", flat=True))
    redis().delete("gpu")


def test_api_start_with_the_broker_down_answers_503_with_the_run(transactional_db, owner, tiny_model, client, monkeypatch):
    project, _ = project_with_chunks(owner, tiny_model, 2)
    client.login(username=owner.username, password=PASSWORD)
    broker_down(monkeypatch)
    response = client.post(f"/api/projects/{project.slug}/runs")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "dispatch_failed" and "the task broker did not answer" in body["error"]
    assert run_state(body["id"]).status == RunStatus.DISPATCH_FAILED


def test_sweep_sends_a_run_that_failed_to_dispatch_once_the_broker_answers(transactional_db, owner, tiny_model, monkeypatch):
    project, _ = project_with_chunks(owner, tiny_model, 4)
    redis().delete("gpu")
    broker_down(monkeypatch)
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=2)
    assert run.status == RunStatus.DISPATCH_FAILED
    assert generation.generation_dispatch_sweep()["unsent"] == []  # still down: nothing taken, nothing lost
    assert run_state(run.pk).status == RunStatus.DISPATCH_FAILED
    broker_up(monkeypatch)
    batches = sorted(GenerationBatch.objects.filter(run=run).values_list("pk", flat=True))
    assert run_state(run.pk).preflight_requested_at is None  # its model check was not sent either
    swept = generation.generation_dispatch_sweep()
    assert sorted(swept["unsent"]) == batches and swept["preflight"] == [run.pk]
    assert run_state(run.pk).status == RunStatus.QUEUED and run_state(run.pk).error == ""
    assert run_state(run.pk).preflight_requested_at is not None
    assert gpu_message_batch_ids() == batches
    # The check first: Redis hands out a list's oldest message (its right end) first.
    tasks = [json.loads(raw)["headers"]["task"] for raw in redis().lrange("gpu", 0, -1)]
    assert tasks[-1] == generation.PREFLIGHT_TASK and tasks.count(generation.PREFLIGHT_TASK) == 1
    assert generation.generation_dispatch_sweep() == {"stale": [], "unsent": [], "lost": [], "preflight": []}  # sent once
    redis().delete("gpu")


def test_two_sweeps_at_once_send_a_model_check_and_an_embedding_check_once(transactional_db, owner, tiny_model, monkeypatch):
    """Celery beat sends one sweep at a time, but a sweep can outlive its interval, and an operator may run two beats:
    while one sweep is sending a check, another sweep runs through, and the check still goes out once."""
    import threading

    from django.db import connection

    from workbench.generation.tasks import dispatch_sweep
    from workbench.quality.models import EmbeddingDispatch

    project, _ = project_with_chunks(owner, tiny_model, 2)
    redis().delete("gpu")
    broker_down(monkeypatch)
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=2)
    broker_up(monkeypatch)
    assert run_state(run.pk).preflight_requested_at is None
    EmbeddingDispatch.objects.create(project=project, pair_ids=[7, 8], error="the broker did not answer")

    real_send = app.send_task
    others: list[threading.Thread] = []

    def other_sweep():
        try:
            dispatch_sweep()
        finally:
            connection.close()

    def send_task(name, *args, **kwargs):
        if name in (generation.PREFLIGHT_TASK, "workers.embeddings.embed_question_duplicates") and len(others) < 2:
            if not any(t.name == name for t in others):
                # The other sweep runs while this one is sending; it gets as far as it can in a second.
                others.append(threading.Thread(target=other_sweep, name=name))
                others[-1].start()
                others[-1].join(1.0)
        return real_send(name, *args, **kwargs)

    monkeypatch.setattr(app, "send_task", send_task)
    try:
        dispatch_sweep()
    finally:
        for thread in others:
            thread.join(30)
    assert len(others) == 2 and not any(t.is_alive() for t in others)
    tasks = [json.loads(raw)["headers"]["task"] for raw in redis().lrange("gpu", 0, -1)]
    assert tasks.count(generation.PREFLIGHT_TASK) == 1
    assert tasks.count("workers.embeddings.embed_question_duplicates") == 1
    assert tasks.count(generation.GPU_TASK) == 1  # the run's one batch, sent by one of the two
    assert run_state(run.pk).preflight_requested_at is not None and not EmbeddingDispatch.objects.exists()
    redis().delete("gpu")


def test_sweep_sends_again_messages_the_broker_lost_and_only_those(transactional_db, owner, tiny_model, settings):
    settings.GENERATION_STALE_SECONDS = 60
    project, _ = project_with_chunks(owner, tiny_model, 6)
    redis().delete("gpu")
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=2)
    batches = sorted(GenerationBatch.objects.filter(run=run).values_list("pk", flat=True))
    assert gpu_message_batch_ids() == batches
    # Sent long ago, and one of the three messages lost on the way (a broker restarted without its data).
    GenerationBatch.objects.filter(run=run).update(dispatched_at=timezone.now() - timedelta(seconds=120))
    client = redis()
    client.lrem(
        "gpu",
        1,
        next(
            m
            for m in client.lrange("gpu", 0, -1)
            if json.loads(m)["headers"]["task"] == generation.GPU_TASK
            and json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] == batches[1]
        ),
    )
    assert generation.generation_dispatch_sweep() == {"stale": [], "unsent": [], "lost": [batches[1]], "preflight": []}
    assert gpu_message_batch_ids() == batches
    GenerationBatch.objects.filter(run=run).update(dispatched_at=timezone.now() - timedelta(seconds=120))
    assert generation.generation_dispatch_sweep()["lost"] == []  # every batch has its message now
    client.delete("gpu")


def test_a_late_worker_cannot_write_once_the_sweep_took_its_batch_back(db, owner, tiny_model, settings):
    settings.GENERATION_STALE_SECONDS = 60
    project, chunks = project_with_chunks(owner, tiny_model, 2, samples=1)
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=2)
    batch_id = GenerationBatch.objects.get(run=run).pk
    late = generation.batch_claim(batch_id=batch_id, worker="late")
    assert generation.batch_claim(batch_id=batch_id, worker="duplicate message") is None  # live: not taken
    GenerationBatch.objects.filter(pk=batch_id).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert generation.generation_dispatch_sweep()["stale"] == [batch_id]
    assert GenerationBatch.objects.get(pk=batch_id).status == BatchStatus.QUEUED
    current = generation.batch_claim(batch_id=batch_id, worker="current")
    assert current.attempts == late.attempts + 1

    sample = generation.GeneratedSample(
        chunk_id=chunks[0].pk,
        sample_index=0,
        raw_text="[[Q]] 질문?\n[[A]] 답.",
        finish_reason="stop",
        prompt_tokens=1,
        completion_tokens=1,
        seed=1,
        duration_ms=1,
    )
    with pytest.raises(generation.BatchLost):
        generation.generations_save(batch=late, samples=[sample], worker="late", gpu_name="cpu")
    assert not Generation.objects.filter(run=run).exists()
    assert generation.batch_heartbeat(batch_id=batch_id, attempt=late.attempts) is False
    assert generation.batch_release(batch_id=batch_id, error="late error", attempt=late.attempts) is False
    generation.batch_finish(batch_id=batch_id, attempt=late.attempts)
    batch = GenerationBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.worker, batch.attempts) == (BatchStatus.RUNNING, "current", current.attempts)

    generation.generations_save(batch=current, samples=[sample], worker="current", gpu_name="cpu")
    assert list(Generation.objects.filter(run=run).values_list("worker", flat=True)) == ["current"]


def test_sigkilled_workers_batch_is_taken_back_by_the_sweep_long_before_the_visibility_timeout(
    start_worker, start_beat, owner, tiny_model
):
    project, chunks = project_with_chunks(owner, tiny_model, 6, samples=2, max_new_tokens=200)
    first = start_worker(**WORKER_ENV)
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=6)  # one long batch
    batch = GenerationBatch.objects.filter(run=run)
    # The heartbeat is renewed while the batch runs (not only when it was claimed).
    wait_for(
        lambda: (b := batch.get()).status == BatchStatus.RUNNING and b.heartbeat_at > b.claimed_at, what="a renewed heartbeat"
    )
    first.kill()
    killed = batch.get()
    assert killed.status == BatchStatus.RUNNING and Generation.objects.filter(run=run).count() < 12  # killed mid-batch
    killed_at = time.monotonic()

    second = start_worker(**WORKER_ENV | {"GENERATION_STALE_SECONDS": "4"})
    start_beat(GENERATION_SWEEP_SECONDS="1", GENERATION_HEARTBEAT_SECONDS="1", GENERATION_STALE_SECONDS="4")
    run = wait_for(
        lambda: (r := run_state(run.pk)).status in {"succeeded", "failed"} and r,
        timeout=240,
        what="run to finish after the crash",
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert time.monotonic() - killed_at < 240  # the broker alone would have redelivered it after 3,600 s
    assert_exactly_once(run, chunks, 2)
    done = batch.get()
    assert done.status == BatchStatus.DONE and done.attempts == 2 and done.worker == second.hostname
    _forget_unacked(done.pk)


def test_a_message_that_finds_its_batch_alive_looks_again_and_takes_it_once_the_heartbeat_is_stale(
    start_worker, owner, tiny_model, tmp_path
):
    """A duplicate, or a redelivery that came before a dead worker's heartbeat went stale, leaves a live batch alone
    and is not dropped: it looks again, as often as the batch stays alive (more than Celery's default of 3 retries),
    and claims the batch once its heartbeat stopped."""
    import threading

    project, chunks = project_with_chunks(owner, tiny_model, 2)
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=2)  # its message waits
    batch_id = GenerationBatch.objects.get(run=run).pk
    ghost = generation.batch_claim(batch_id=batch_id, worker="ghost")  # a worker that is alive, for now
    stop = threading.Event()

    def beat():
        from django.db import connection

        while not stop.wait(0.5):
            generation.batch_heartbeat(batch_id=batch_id, attempt=ghost.attempts)
        connection.close()

    beating = threading.Thread(target=beat)
    beating.start()
    try:
        worker = start_worker(**WORKER_ENV | {"GENERATION_STALE_SECONDS": "3"})
        # Alive through five looks: a chain of retries capped at Celery's default would drop the message at the fourth.
        wait_for(
            lambda: (tmp_path / "worker.log").read_text().count("retry: Retry in 3s") >= 5,
            what="the message to look again five times",
        )
        assert GenerationBatch.objects.get(pk=batch_id).worker == "ghost"  # left alone while alive
    finally:
        stop.set()  # the ghost dies
        beating.join()
    ghost_last = GenerationBatch.objects.get(pk=batch_id).heartbeat_at
    run = wait_for(lambda: (r := run_state(run.pk)).status in {"succeeded", "failed"} and r, what="run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    batch = GenerationBatch.objects.get(pk=batch_id)
    assert batch.worker == worker.hostname and batch.attempts == ghost.attempts + 1
    assert (batch.claimed_at - ghost_last).total_seconds() >= 3
    assert_exactly_once(run, chunks, 2)


def test_a_live_heartbeating_batch_is_never_taken_by_the_sweep(start_worker, owner, tiny_model, settings):
    settings.GENERATION_STALE_SECONDS = 3
    # One batch long enough (24 samples of up to 240 tokens: 9 s was not always enough on an idle machine) that a
    # heartbeat renewed only at the claim would go stale several times over.
    project, chunks = project_with_chunks(owner, tiny_model, 8, samples=3, max_new_tokens=240)
    worker = start_worker(**WORKER_ENV | {"GENERATION_STALE_SECONDS": "3"})
    run = generation.generation_run_create(project=project, created_by=owner, batch_chunks=8)
    batch = GenerationBatch.objects.filter(run=run)
    wait_for(lambda: batch.get().status == BatchStatus.RUNNING, what="the batch to start")
    swept_while_running = 0.0
    last = time.monotonic()
    while (current := batch.get()).status == BatchStatus.RUNNING:
        assert generation.generation_dispatch_sweep() == {"stale": [], "unsent": [], "lost": [], "preflight": []}
        time.sleep(0.5)
        now = time.monotonic()
        swept_while_running += now - last
        last = now
        assert swept_while_running < 300, "the batch did not finish"
    # Long enough that a heartbeat renewed only at the claim would have gone stale several times over.
    assert swept_while_running > 3 * settings.GENERATION_STALE_SECONDS, f"batch ran only {swept_while_running:.1f} s"
    assert current.status == BatchStatus.DONE and current.attempts == 1 and current.worker == worker.hostname
    run = run_state(run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 3)


def test_beat_schedules_the_sweep_and_every_deployment_runs_beat():
    from django.conf import settings

    import workbench.generation.tasks  # noqa: F401 (registers the task)

    schedule = settings.CELERY_BEAT_SCHEDULE["generation-dispatch-sweep"]
    assert schedule["task"] in app.tasks and schedule["schedule"] == settings.GENERATION_SWEEP_SECONDS
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {
        name: " ".join(s.get("command", "")) if isinstance(s.get("command"), list) else s.get("command", "")
        for name, s in services.items()
    }
    beats = [name for name, command in commands.items() if " beat" in command or " -B" in command]
    assert beats == ["beat"] and "deploy" not in services["beat"]  # exactly one, scaled or not


def test_serve_runs_beat_beside_its_worker(transactional_db, monkeypatch):
    """`manage.py serve` starts its worker with -B (embedded beat). The child processes are recorded, not started."""
    from django.core.management import call_command

    from workbench.demo.management.commands import serve

    started = []

    class Recorded:
        returncode = 0

        def __init__(self, argv, **kwargs):
            started.append(argv)

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

    import signal

    monkeypatch.setattr(serve.subprocess, "Popen", Recorded)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        call_command("serve", "--no-demo", "--port", "8391")
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    worker = next(argv for argv in started if "worker" in argv)
    assert "-B" in worker


def _forget_unacked(batch_id: int) -> None:
    """The killed worker's message waits in Redis' unacked set for the visibility timeout; drop it after the test."""
    client = redis()
    for tag, value in client.hgetall("unacked").items():
        message = json.loads(value)[0]
        if json.loads(base64.b64decode(message["body"]))[0] == [batch_id]:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def test_a_stale_limit_below_twice_the_heartbeat_stops_startup_by_name():
    env = os.environ | {"GENERATION_HEARTBEAT_SECONDS": "30", "GENERATION_STALE_SECONDS": "45"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "GENERATION_STALE_SECONDS (45) must be at least twice GENERATION_HEARTBEAT_SECONDS (30)" in result.stderr
