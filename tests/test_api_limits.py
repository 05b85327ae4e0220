"""Django's own refusals on /api/ answer in JSON with `detail`, as every other API refusal does; pages keep HTML."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver

from tests.factories import make_pairs
from tests.review.test_api import token_client
from workbench.projects.api_errors import SERVER_ERROR, api_exception_handler, server_error


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


def _failing_stats(**kwargs):
    raise RuntimeError("the stats query broke")


@pytest.mark.parametrize("debug", [True, False])
def test_a_server_error_under_the_api_is_a_json_500_and_logged(project, reviewer, settings, monkeypatch, caplog, debug):
    settings.DEBUG = debug  # with DEBUG on, Django's answer was its HTML debug page
    monkeypatch.setattr("workbench.review.api.project_stats", _failing_stats)
    api = token_client(reviewer)
    api.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = api.get(f"/api/projects/{project.slug}/stats")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": SERVER_ERROR}
    (record,) = [r for r in caplog.records if r.name == "django.request"]  # once, with the traceback
    assert record.exc_info and "the stats query broke" in str(record.exc_info[1])


def test_a_server_error_under_the_api_still_reaches_error_reporting(project, reviewer, monkeypatch):
    monkeypatch.setattr("workbench.review.api.project_stats", _failing_stats)
    with pytest.raises(RuntimeError, match="the stats query broke"):  # got_request_exception: the test client re-raises
        token_client(reviewer).get(f"/api/projects/{project.slug}/stats")


def test_handler500_answers_json_under_the_api_and_the_page_elsewhere(rf):
    assert get_resolver().resolve_error_handler(500) is server_error  # what Django answers a 500 with, DEBUG off
    api = server_error(rf.get("/api/projects/x/stats"))
    assert api.status_code == 500 and json.loads(api.content) == {"detail": SERVER_ERROR}
    page = server_error(rf.get("/p/x/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_an_api_404_names_no_model_class(project, owner):
    api = token_client(owner)
    response = api.get(f"/api/projects/{project.slug}/imports/999999")
    assert response.status_code == 404 and response.json() == {"detail": "No such import job."}
    response = api.post("/api/pairs/999999/review", {"decision": "approve", "version": 1}, format="json")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_django_404_messages_become_not_found_in_the_api(rf):
    from django.http import Http404

    response = api_exception_handler(Http404("No ImportJob matches the given query."), {"request": None})
    assert response.status_code == 404 and response.data == {"detail": "Not found."}


def test_a_suspicious_request_in_an_api_view_is_a_json_400_not_a_server_error(rf, caplog):
    """SuspiciousOperation (a multipart body that sends Django's parser in circles, a bad header) is the client's error:
    400, logged under django.security as Django logs it, not a 500 for the operators' error reporting."""
    from django.core.exceptions import SuspiciousMultipartForm
    from rest_framework.request import Request

    request = Request(rf.post("/api/projects/x/documents"))
    with caplog.at_level(logging.ERROR):
        response = api_exception_handler(SuspiciousMultipartForm("The multipart parser got stuck"), {"request": request})
    assert response.status_code == 400 and json.loads(response.content) == {
        "detail": "Bad request: the request could not be read."
    }
    assert [r.name for r in caplog.records] == ["django.security.SuspiciousMultipartForm"]
