"""A request that starts a run, sent again, starts no second run: the API's Idempotency-Key header and the start form's
own key. A retried POST (a timeout, a proxy resending) or a double click would otherwise generate every chunk twice on
the GPUs and put each pair twice in the review queue. Real PostgreSQL and Redis (the runs' messages go to the broker)."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from django.test import Client

from tests.conftest import PASSWORD
from tests.factories import make_project
from tests.generation.test_dispatch import gpu_message_batch_ids, redis
from tests.generation.test_worker_runs import project_with_chunks
from workbench.generation import services as generation
from workbench.generation.models import GenerationBatch, GenerationRun


@pytest.fixture
def project(transactional_db, owner, tiny_model):
    redis().delete("gpu")
    project, _ = project_with_chunks(owner, tiny_model, 3)
    yield project
    redis().delete("gpu")


def _client(owner) -> Client:
    client = Client()
    assert client.login(username=owner.username, password=PASSWORD)
    return client


def _start(client, project, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/projects/{project.slug}/runs", **headers)


def test_the_same_key_again_gets_the_first_run_and_sends_nothing_more(project, owner):
    client = _client(owner)
    first = _start(client, project, "7c0e6a52-run-1")
    again = _start(client, project, "7c0e6a52-run-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert GenerationRun.objects.filter(project=project).count() == 1
    batch_ids = list(GenerationBatch.objects.filter(run_id=first.json()["id"]).values_list("pk", flat=True))
    assert sorted(i for i in gpu_message_batch_ids() if i in batch_ids) == sorted(batch_ids)  # each sent once

    other = _start(client, project, "7c0e6a52-run-2")  # another key is another request
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    no_key = [_start(client, project).json()["id"] for _ in range(2)]  # without a key, as before: a run each
    assert len(set(no_key)) == 2
    assert GenerationRun.objects.filter(project=project).count() == 4


def test_a_key_belongs_to_its_project(project, owner, tiny_model):
    other_project, _ = project_with_chunks(owner, tiny_model, 1)
    client = _client(owner)
    a = _start(client, project, "same-key")
    b = _start(client, other_project, "same-key")
    assert (a.status_code, b.status_code) == (201, 201)
    assert GenerationRun.objects.get(pk=b.json()["id"]).project == other_project


@pytest.mark.parametrize("key", ["x" * 201, "키", "tab\there", "line\nbreak"])
def test_a_key_that_is_not_printable_ascii_is_refused_and_starts_nothing(project, owner, key):
    response = _start(_client(owner), project, key)
    assert response.status_code == 400
    assert "printable ASCII" in response.json()["detail"][0]
    assert not GenerationRun.objects.filter(project=project).exists()


def test_a_key_with_spaces_is_a_key_as_the_guide_says(project, owner):
    client = _client(owner)
    first = _start(client, project, "key with space")
    again = _start(client, project, " key with space\t")  # as a proxy may pass it on: HTTP's whitespace is no part of it
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert GenerationRun.objects.get(project=project).request_key == "key with space"


def test_the_same_key_at_the_same_moment_starts_one_run(project, owner, monkeypatch):
    # Both requests pass the look-up before either has created its run; the database's unique key decides, and the
    # loser answers with the winner's run.
    arrived = threading.Barrier(2, timeout=30)
    create = generation.generation_run_create

    def create_together(**kwargs):
        arrived.wait()
        return create(**kwargs)

    monkeypatch.setattr(generation, "generation_run_create", create_together)
    responses = []

    def start():
        try:
            responses.append(_start(_client(owner), project, "at-once"))
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert GenerationRun.objects.filter(project=project).count() == 1
    assert GenerationBatch.objects.filter(run__project=project).count() == 1


def test_the_start_form_sent_twice_starts_one_run(project, owner):
    client = _client(owner)
    page = client.get(f"/p/{project.slug}/runs/").content.decode()
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', page).group(1)
    first = client.post(f"/p/{project.slug}/runs/start", {"request_key": key}, follow=True)
    again = client.post(f"/p/{project.slug}/runs/start", {"request_key": key}, follow=True)
    run = GenerationRun.objects.get(project=project)
    assert first.redirect_chain[-1][0] == again.redirect_chain[-1][0] == f"/p/{project.slug}/runs/{run.pk}/"
    assert f"Run {run.pk} was already started from this form" in again.content.decode()
    # The page drawn again carries a new key: starting another run on purpose still works.
    next_key = re.search(r'name="request_key" value="([0-9a-f]{32})"', client.get(f"/p/{project.slug}/runs/").content.decode())
    assert next_key.group(1) != key
    client.post(f"/p/{project.slug}/runs/start", {"request_key": next_key.group(1)})
    assert GenerationRun.objects.filter(project=project).count() == 2


def test_the_service_without_a_request(db, owner):
    # `manage.py generate` and the demo start runs without a key: each call is a run, as before.
    project = make_project(admins=[owner])
    from workbench.documents.models import Chunk, SourceDocument

    doc = SourceDocument.objects.create(project=project, content_hash="k", text="대한민국은 민주공화국이다.", title="헌법")
    Chunk.objects.create(document=doc, chunking_key="k", index=0, text=doc.text, start=0, end=10, size=10)
    (a, created_a), (b, created_b) = (generation.generation_run_start(project=project) for _ in range(2))
    assert created_a and created_b and a.pk != b.pk


def test_the_admins_start_form_sent_twice_starts_one_run(project, owner):
    client = _client(owner)
    page = client.get("/admin/generation/generationrun/start/").content.decode()
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', page).group(1)
    for _ in range(2):
        response = client.post("/admin/generation/generationrun/start/", {"project": project.pk, "request_key": key}, follow=True)
    run = GenerationRun.objects.get(project=project)
    assert f"Run {run.pk} was already started from this form" in response.content.decode()
