"""The review API's exact contract."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import make_pairs
from workbench.review.models import ReviewDecision


def token_client(user):
    out = io.StringIO()
    call_command("create_api_token", user.username, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    return client


def test_claim_review_and_stats(project, reviewer):
    make_pairs(project, 2, flags_every=2)
    api = token_client(reviewer)
    claim = api.post(f"/api/projects/{project.slug}/queue/claim")
    assert claim.status_code == 200
    body = claim.json()
    assert {"id", "version", "question", "answer", "flags", "chunk_text", "lease_expires_at"} <= set(body)
    assert body["flags"] == ["echo"] and body["chunk_text"].startswith("대한민국은")
    review = api.post(
        f"/api/pairs/{body['id']}/review",
        {"decision": "edit", "question": "고친 질문?", "answer": "고친 답.", "reason": "", "version": body["version"]},
        format="json",
    )
    assert review.status_code == 200
    assert (review.json()["version"], review.json()["status"], review.json()["question"]) == (2, "edited", "고친 질문?")
    second = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    assert (
        api.post(
            f"/api/pairs/{second['id']}/review", {"decision": "approve", "version": second["version"]}, format="json"
        ).status_code
        == 200
    )
    assert api.post(f"/api/projects/{project.slug}/queue/claim").status_code == 204
    stats = api.get(f"/api/projects/{project.slug}/stats").json()
    assert stats["by_status"] == {"pending": 0, "approved": 1, "edited": 1, "rejected": 0}
    assert stats["by_flag"] == {"echo": 1} and stats["total"] == 2


def test_hot_path_answers_match_the_serializer(project, reviewer):
    """The claim and the review build their answers from the rows their statements return; the result must be what
    PairSerializer gives for the pair as stored, field for field (the contract the OpenAPI schema describes)."""
    from workbench.generation.models import QAPair
    from workbench.review.api import PairSerializer

    make_pairs(project, 1, flags_every=1)
    api = token_client(reviewer)
    claim = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    stored = QAPair.objects.select_related("chunk").get(pk=claim["id"])
    assert claim == PairSerializer(stored).data
    assert stored.claimed_by_id == reviewer.pk and claim["lease_expires_at"]
    review = api.post(
        f"/api/pairs/{claim['id']}/review",
        {"decision": "edit", "question": " 새 질문? ", "answer": "새 답.", "version": claim["version"]},
        format="json",
    ).json()
    stored.refresh_from_db()
    assert review == PairSerializer(stored).data
    assert (stored.question, stored.status, stored.version, stored.claimed_by_id) == ("새 질문?", "edited", 2, None)
    decision = ReviewDecision.objects.get(pair=stored)
    assert (
        decision.reviewer_id,
        decision.decision,
        decision.question_before,
        decision.question_after,
        decision.version_before,
        decision.status_before,
        decision.status_after,
    ) == (reviewer.pk, "edit", claim["question"], "새 질문?", 1, "pending", "edited")


def test_stale_version_and_foreign_lease_are_409(project, reviewer, owner):
    (pair,) = make_pairs(project, 1)
    api, other = token_client(reviewer), token_client(owner)
    claimed = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    foreign = other.post(f"/api/pairs/{pair.pk}/review", {"decision": "approve", "version": 1}, format="json")
    assert foreign.status_code == 409 and "reviewer is reviewing this pair now" in foreign.json()["detail"]
    stale = api.post(f"/api/pairs/{pair.pk}/review", {"decision": "approve", "version": 7}, format="json")
    assert stale.status_code == 409 and stale.json()["pair"]["version"] == claimed["version"]


def test_a_pair_never_claimed_is_a_409_that_says_so(project, reviewer):
    (pair,) = make_pairs(project, 1)
    response = token_client(reviewer).post(f"/api/pairs/{pair.pk}/review", {"decision": "approve", "version": 1}, format="json")
    assert response.status_code == 409 and "you never claimed it" in response.json()["detail"]


def test_double_submit_through_the_api_records_once(project, reviewer):
    (pair,) = make_pairs(project, 1)
    api = token_client(reviewer)
    api.post(f"/api/projects/{project.slug}/queue/claim")
    payload = {"decision": "reject", "reason": "Duplicate of another question", "version": 1}
    assert api.post(f"/api/pairs/{pair.pk}/review", payload, format="json").status_code == 200
    assert api.post(f"/api/pairs/{pair.pk}/review", payload, format="json").status_code == 200
    assert ReviewDecision.objects.filter(pair=pair).count() == 1


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"decision": "maybe", "version": 1}, "decision"),
        ({"decision": "approve"}, "version"),
        ({"decision": "reject", "version": 1}, "reason"),
        ({"decision": "edit", "version": 1, "question": "", "answer": "답"}, "question"),
    ],
)
def test_bad_input_is_400_with_field_errors(project, reviewer, payload, field):
    (pair,) = make_pairs(project, 1)
    api = token_client(reviewer)
    api.post(f"/api/projects/{project.slug}/queue/claim")
    response = api.post(f"/api/pairs/{pair.pk}/review", payload, format="json")
    assert response.status_code == 400 and field in response.json()


def test_outsider_gets_404_everywhere_in_the_api(project, outsider):
    (pair,) = make_pairs(project, 1)
    api = token_client(outsider)
    assert api.post(f"/api/projects/{project.slug}/queue/claim").status_code == 404
    assert api.post(f"/api/pairs/{pair.pk}/review", {"decision": "approve", "version": 1}, format="json").status_code == 404
    assert api.get(f"/api/projects/{project.slug}/stats").status_code == 404
    assert APIClient().get(f"/api/projects/{project.slug}/stats").status_code in (401, 403)


def test_openapi_describes_the_review_api(client, reviewer):
    schema = token_client(reviewer).get("/api/openapi.json").json()
    for path in ("/api/projects/{slug}/queue/claim", "/api/pairs/{pair_id}/review", "/api/projects/{slug}/stats"):
        assert path in schema["paths"]
    assert "409" in schema["paths"]["/api/pairs/{pair_id}/review"]["post"]["responses"]
