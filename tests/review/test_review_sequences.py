"""Sequences of decisions at the service level (and through the pages without a browser): skip, decide, next, undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewConflict, ReviewInput, pair_claim, pair_review, review_undo

pytestmark = pytest.mark.usefixtures("review_path")  # both paths: PostgreSQL's single statements and the ORM's


def decide(pair, reviewer, decision="approve", **fields):
    return pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput(decision, pair.version, **fields))


def test_skip_then_decide_then_next_does_not_bring_the_skipped_pair_back(project, reviewer):
    pairs = make_pairs(project, 4)
    first = pair_claim(project=project, reviewer=reviewer)
    preloaded = pair_claim(project=project, reviewer=reviewer, exclude=(first.pk,))  # the page preloads the next pair
    assert (first.pk, preloaded.pk) == (pairs[0].pk, pairs[1].pk)
    decide(first, reviewer, "skip")
    after_skip = pair_claim(project=project, reviewer=reviewer, exclude=(preloaded.pk,))
    assert after_skip.pk == pairs[2].pk
    decide(preloaded, reviewer)
    assert pair_claim(project=project, reviewer=reviewer, exclude=(after_skip.pk,)).pk == pairs[3].pk
    decide(after_skip, reviewer)
    decide(QAPair.objects.get(pk=pairs[3].pk), reviewer)
    # The rest of the queue is done: the skipped pair comes back last.
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[0].pk


def test_skipped_pairs_come_back_in_the_order_they_were_skipped(project, reviewer):
    pairs = make_pairs(project, 3)
    for expected in (pairs[0], pairs[1]):
        pair = pair_claim(project=project, reviewer=reviewer)
        assert pair.pk == expected.pk
        decide(pair, reviewer, "skip")
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[2].pk
    decide(QAPair.objects.get(pk=pairs[2].pk), reviewer)
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[0].pk
    decide(QAPair.objects.get(pk=pairs[0].pk), reviewer, "skip")
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[1].pk


def test_another_reviewer_may_take_a_skipped_pair(project, reviewer, owner):
    pairs = make_pairs(project, 2)
    decide(pair_claim(project=project, reviewer=reviewer), reviewer, "skip")
    assert pair_claim(project=project, reviewer=owner).pk == pairs[0].pk
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[1].pk


def test_skips_of_an_earlier_session_no_longer_count(project, reviewer):
    pairs = make_pairs(project, 2)
    decide(pair_claim(project=project, reviewer=reviewer), reviewer, "skip")
    reviewer.last_login = timezone.now() + timedelta(seconds=1)  # logged in again after the skip
    reviewer.save(update_fields=["last_login"])
    assert pair_claim(project=project, reviewer=reviewer).pk == pairs[0].pk


def test_decide_then_undo_gives_back_that_pair_and_the_page_shows_it(client, project, reviewer):
    pairs = make_pairs(project, 4)
    client.login(username=reviewer.username, password=PASSWORD)
    queue = reverse("review:queue", args=[project.slug])
    assert client.get(queue).context["pair"].pk == pairs[0].pk
    assert client.get(reverse("review:next", args=[project.slug]), {"after": pairs[0].pk}).context["pair"].pk == pairs[1].pk
    client.post(reverse("review:decide", args=[project.slug, pairs[0].pk]), {"decision": "approve", "version": 1})
    assert client.get(reverse("review:next", args=[project.slug]), {"after": pairs[1].pk}).context["pair"].pk == pairs[2].pk
    client.post(reverse("review:decide", args=[project.slug, pairs[1].pk]), {"decision": "approve", "version": 1})
    response = client.post(reverse("review:undo", args=[project.slug]), follow=True)
    assert f"pair {pairs[1].pk} is back with you" in response.content.decode()
    assert response.context["pair"].pk == pairs[1].pk
    restored = QAPair.objects.get(pk=pairs[1].pk)
    assert (restored.status, restored.claimed_by_id) == (PairStatus.PENDING, reviewer.pk)


def test_skip_then_undo_gives_back_the_skipped_pair(project, reviewer):
    pairs = make_pairs(project, 3)
    decide(pair_claim(project=project, reviewer=reviewer), reviewer)
    skipped = pair_claim(project=project, reviewer=reviewer)
    decide(skipped, reviewer, "skip")
    pair_claim(project=project, reviewer=reviewer)  # the next pair, shown after the skip
    restored = review_undo(project=project, reviewer=reviewer)
    assert restored.pk == skipped.pk == pairs[1].pk
    assert (restored.status, restored.claimed_by_id, restored.version) == (PairStatus.PENDING, reviewer.pk, 2)
    assert QAPair.objects.get(pk=pairs[0].pk).status == PairStatus.APPROVED  # the decision before the skip stands
    assert list(ReviewDecision.objects.filter(pair=skipped).order_by("id").values_list("decision", flat=True)) == ["skip", "undo"]
    # Undone, the skip no longer sends the pair to the back: it is decided like any other.
    assert decide(restored, reviewer).status == PairStatus.APPROVED


def test_undo_of_a_skip_taken_by_another_reviewer_is_refused(project, reviewer, owner):
    make_pairs(project, 2)
    skipped = pair_claim(project=project, reviewer=reviewer)
    decide(skipped, reviewer, "skip")
    assert pair_claim(project=project, reviewer=owner).pk == skipped.pk
    with pytest.raises(ReviewConflict, match="owner took the pair you skipped"):
        review_undo(project=project, reviewer=reviewer)
    assert QAPair.objects.get(pk=skipped.pk).claimed_by_id == owner.pk


def test_skip_then_undo_through_the_pages(client, project, reviewer):
    pairs = make_pairs(project, 3)
    client.login(username=reviewer.username, password=PASSWORD)
    client.get(reverse("review:queue", args=[project.slug]))
    client.get(reverse("review:next", args=[project.slug]), {"after": pairs[0].pk})
    client.post(reverse("review:decide", args=[project.slug, pairs[0].pk]), {"decision": "skip", "version": 1})
    response = client.post(reverse("review:undo", args=[project.slug]), follow=True)
    assert f"pair {pairs[0].pk} is back with you" in response.content.decode()
    assert response.context["pair"].pk == pairs[0].pk


def test_skip_then_undo_twice_says_already_undone_and_keeps_the_pair_on_screen(client, project, reviewer):
    pairs = make_pairs(project, 3)
    client.login(username=reviewer.username, password=PASSWORD)
    client.get(reverse("review:queue", args=[project.slug]))
    client.get(reverse("review:next", args=[project.slug]), {"after": pairs[0].pk})  # the preloaded pair, leased too
    client.post(reverse("review:decide", args=[project.slug, pairs[0].pk]), {"decision": "skip", "version": 1})
    client.post(reverse("review:undo", args=[project.slug]))
    response = client.post(reverse("review:undo", args=[project.slug]), follow=True)
    page = response.content.decode()
    assert f"Your last decision (pair {pairs[0].pk}) is undone already" in page and "changed after you skipped" not in page
    assert response.context["pair"].pk == pairs[0].pk  # the pair the first undo gave back, not the preloaded one
    assert QAPair.objects.get(pk=pairs[0].pk).version == 2  # the second undo wrote nothing
