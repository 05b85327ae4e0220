"""Malformed review input gets a 400 naming the problem, never a 500, and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, ROOT
from tests.factories import make_pairs
from tests.review.test_api import token_client
from workbench.generation.models import QAPair
from workbench.review.models import ReviewDecision

DEEP = 100_000  # past the interpreter's recursion limit


@pytest.mark.parametrize("version", [2**31, 2**63, 10**30])
def test_api_version_out_of_range_is_a_400(project, reviewer, version):
    make_pairs(project, 1)
    api = token_client(reviewer)
    pair = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    response = api.post(f"/api/pairs/{pair['id']}/review", {"decision": "approve", "version": version}, format="json")
    assert response.status_code == 400 and "version" in response.json()
    assert not ReviewDecision.objects.exists() and QAPair.objects.get().status == "pending"


def test_form_version_out_of_range_is_a_400(client, reviewer, project):
    (pair,) = make_pairs(project, 1)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("review:decide", args=[project.slug, pair.pk]), {"decision": "approve", "version": 2**31})
    assert response.status_code == 400
    assert not ReviewDecision.objects.exists()


@pytest.mark.parametrize("flag", ["\x00", "echo\x00", "no-such-flag"])
def test_claim_with_an_unknown_flag_is_a_400(project, reviewer, flag):
    make_pairs(project, 1, flags_every=1)
    api = token_client(reviewer)
    response = api.post(f"/api/projects/{project.slug}/queue/claim?" + f"flag={flag}".replace("\x00", "%00"))
    assert response.status_code == 400 and "flag" in response.json()
    assert not QAPair.objects.filter(claimed_by__isnull=False).exists()
    assert api.post(f"/api/projects/{project.slug}/queue/claim?flag=echo").status_code == 200


def test_pages_ignore_a_nul_flag_and_a_huge_after(client, reviewer, project):
    make_pairs(project, 2)
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get(reverse("review:queue", args=[project.slug]) + "?flag=%00").status_code == 200
    assert client.get(reverse("review:next", args=[project.slug]) + f"?after={10**30}").status_code == 200


def test_deeply_nested_review_body_is_a_400(project, reviewer):
    make_pairs(project, 1)
    api = token_client(reviewer)
    pair = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    body = '{"decision": "approve", "version": 1, "reason": ' + "[" * DEEP + "]" * DEEP + "}"
    response = api.post(f"/api/pairs/{pair['id']}/review", body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
    assert not ReviewDecision.objects.exists()


HUGE = "99999999999999999999"  # past a bigint: SQLite cannot bind it at all

SQLITE_HUGE_NUMBERS = textwrap.dedent(f"""
    import json

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from tests.factories import make_pairs, make_project, make_user

    call_command("migrate", verbosity=0)
    owner = make_user("owner")
    project = make_project(slug="kor-news", admins=[owner])
    (pair,) = make_pairs(project, 1, with_generation=True)
    client = Client(raise_request_exception=False)
    client.login(username="owner", password="pw-for-tests-only")
    answers = {{}}
    for url in (
        "/p/kor-news/pairs/?run={HUGE}",
        "/p/kor-news/pairs/?page={HUGE}",
        "/p/kor-news/review/?pair={HUGE}",
        "/p/kor-news/review/next?after={HUGE}",
        f"/p/kor-news/documents/{{pair.chunk.document_id}}/preview?target={HUGE}",
    ):
        answers["GET " + url] = client.get(url).status_code
    answers["POST bulk-reject run={HUGE}"] = client.post("/p/kor-news/pairs/bulk-reject", {{"run": "{HUGE}", "reason": "x"}}).status_code
    answers["pending"] = pair.__class__.objects.filter(status="pending").count()
    print(json.dumps(answers))
""")


def test_huge_numbers_in_query_strings_are_refused_cleanly_on_sqlite(tmp_path):
    """The single-machine start's SQLite raised OverflowError (a 500) on an id past 64 bits; PostgreSQL found nothing."""
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'workbench.sqlite3'}",
        "WORKBENCH_DATA_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_HUGE_NUMBERS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers.pop("pending") == 1  # the bulk rejection with a bad filter rejected nothing
    assert answers.pop(f"POST bulk-reject run={HUGE}") == 302  # back to the browser, saying the filter is not valid
    assert answers == {url: 200 for url in answers}, answers
    # (the `next` fragment answers 200 with the next pair: a bad `after` excludes nothing)


def test_pair_browser_refuses_a_run_id_past_the_id_column(client, owner, project):
    make_pairs(project, 2)
    client.login(username=owner.username, password=PASSWORD)
    response = client.get(reverse("review:pairs", args=[project.slug]) + f"?run={HUGE}")
    assert response.status_code == 200
    assert response.context["count"] == 0  # an invalid filter lists nothing, not the whole project
    assert "less than or equal to 9223372036854775807" in response.content.decode()


@pytest.mark.parametrize("pair", ["²", "١٢", HUGE, "-1"])
def test_queue_ignores_a_pair_parameter_that_is_not_an_id(client, reviewer, project, pair):
    make_pairs(project, 1)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.get(reverse("review:queue", args=[project.slug]), {"pair": pair})
    assert response.status_code == 200 and response.context["pair"] is not None  # the queue's next pair


def test_chunk_preview_refuses_sizes_no_project_could_have(client, reviewer, project):
    (pair,) = make_pairs(project, 1)
    client.login(username=reviewer.username, password=PASSWORD)
    url = reverse("documents:preview", args=[project.slug, pair.chunk.document_id])
    response = client.get(url, {"target": HUGE})
    assert response.status_code == 200
    assert "less than or equal to 2147483647" in response.content.decode()


def test_api_reason_is_capped_as_the_review_page_caps_it(project, reviewer):
    make_pairs(project, 1)
    api = token_client(reviewer)
    pair = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    url = f"/api/pairs/{pair['id']}/review"
    response = api.post(url, {"decision": "reject", "version": 1, "reason": "가" * 2001}, format="json")
    assert response.status_code == 400
    assert response.json() == {"reason": ["Ensure this field has no more than 2000 characters."]}
    assert not ReviewDecision.objects.exists() and QAPair.objects.get().status == "pending"
    response = api.post(url, {"decision": "reject", "version": 1, "reason": "가" * 2000}, format="json")
    assert response.status_code == 200 and ReviewDecision.objects.get().reason == "가" * 2000


def test_admin_pair_page_reason_is_capped_as_its_field_says(client, owner, project):
    (pair,) = make_pairs(project, 1)
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:pair", args=[project.slug, pair.pk])
    response = client.post(url, {"action": "reject", "version": "1", "reason": "x" * 2001})
    assert response.status_code == 400 and "Keep the reason to 2,000 characters" in response.content.decode()
    assert not ReviewDecision.objects.exists() and QAPair.objects.get().status == "pending"
