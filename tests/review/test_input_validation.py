"""Malformed review input gets a 400 naming the problem, never a 500, and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
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
