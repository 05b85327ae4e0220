"""The OpenAPI schema describes what the run endpoints answer: a client generated from it sees every field."""

from __future__ import annotations

from tests.factories import make_pairs
from tests.review.test_api import token_client
from workbench.generation.models import GenerationRun


def test_the_run_progress_schema_names_every_field_the_api_answers(owner, project):
    make_pairs(project, 1, with_generation=True)
    run = GenerationRun.objects.get(project=project)
    client = token_client(owner)
    answered = client.get(f"/api/runs/{run.pk}").json()
    schema = client.get("/api/openapi.json").json()
    components = schema["components"]["schemas"]
    assert set(components["RunProgress"]["properties"]) == set(answered)
    assert set(components["RunProgress"]["required"]) == set(answered)
    assert components["RunProgress"]["properties"]["workers"]["items"]["$ref"].endswith("/WorkerThroughput")
    batches = components["RunProgress"]["properties"]
    assert batches["failed_batches"]["items"] == batches["retrying_batches"]["items"]  # one BatchNote component
