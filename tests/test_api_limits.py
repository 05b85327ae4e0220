"""Django's own refusals on /api/ answer in JSON with `detail`, as every other API refusal does; pages keep HTML."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import make_pairs
from tests.review.test_api import token_client


def test_a_body_past_the_limit_is_a_json_413(project, reviewer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    (pair,) = make_pairs(project, 1)
    body = json.dumps({"decision": "edit", "version": 1, "question": "질문?", "answer": "가" * (1024 * 1024)})
    response = token_client(reviewer).post(f"/api/pairs/{pair.pk}/review", body, content_type="application/json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The request body is larger than 1 MiB."}


def test_more_files_than_the_limit_is_a_json_400(project, owner, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"{i}.txt", "대한민국은 민주공화국이다.".encode()) for i in range(3)]
    response = token_client(owner).post(f"/api/projects/{project.slug}/documents", {"files": files}, format="multipart")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "More than 2 files in one request; send them in several."}


def test_an_api_url_that_names_nothing_is_a_json_404_and_a_page_stays_html(client, reviewer):
    api = token_client(reviewer).get("/api/runs/-1")
    assert api.status_code == 404 and api.json() == {"detail": "Not found."}
    page = client.get("/no/such/page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_an_api_url_that_names_nothing_is_json_also_with_debug_on(client, reviewer, settings):
    settings.DEBUG = True  # bin/start's setting: Django's own 404 page would be its HTML debug page
    for path in ("/api/no/such/thing", "/api/runs/", "/api/"):
        response = token_client(reviewer).get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, path
    page = client.get("/no/such/page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
