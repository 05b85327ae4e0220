"""The review queue on SQLite, the database of the single-machine start (`bin/start`): only the ORM path serves it.

The other review tests run the ORM path on PostgreSQL too (the `review_path` fixture); this one runs it where it is
the only path, in a process of its own with an SQLite database, through claim, preload, skip, decide, conflict and undo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def run_on_sqlite(script: str, tmp_path) -> dict:
    """Run a script in a process of its own on an SQLite database in tmp_path; the JSON its last line prints."""
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'workbench.sqlite3'}",
        "WORKBENCH_DATA_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


SQLITE_QUEUE = textwrap.dedent("""
    import json

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tests.factories import make_pairs, make_project, make_user
    from workbench.generation.models import QAPair
    from workbench.review.models import ReviewDecision
    from workbench.review.services import ReviewConflict, ReviewInput, pair_claim, pair_review, review_undo

    call_command("migrate", verbosity=0)
    owner, reviewer, other = make_user("owner"), make_user("reviewer"), make_user("other")
    project = make_project(admins=[owner], reviewers=[reviewer, other])
    pairs = make_pairs(project, 4)
    ids = [p.pk for p in pairs]
    out = {"vendor": connection.vendor}

    def decide(pair, user, decision, **fields):
        return pair_review(pair_id=pair.pk, reviewer=user, data=ReviewInput(decision, pair.version, **fields))

    first = pair_claim(project=project, reviewer=reviewer)
    out["reload"] = [first.pk, pair_claim(project=project, reviewer=reviewer).pk]
    preloaded = pair_claim(project=project, reviewer=reviewer, exclude=(first.pk,))
    out["preloaded"] = preloaded.pk
    out["other_gets"] = pair_claim(project=project, reviewer=other).pk
    decide(first, reviewer, "skip")
    edited = decide(preloaded, reviewer, "edit", question="고친 질문?", answer="고친 답.")
    out["edited"] = [edited.status, edited.version, edited.question]
    # Someone else's pair, then a stale version: conflicts, nothing written.
    conflicts = []
    for pair_id, version in ((out["other_gets"], 1), (preloaded.pk, 1)):
        try:
            pair_review(pair_id=pair_id, reviewer=reviewer, data=ReviewInput("approve", version))
        except ReviewConflict as exc:
            conflicts.append(str(exc))
    out["conflicts"] = conflicts
    nxt = pair_claim(project=project, reviewer=reviewer)
    out["next"] = nxt.pk
    decide(nxt, reviewer, "reject", reason="답이 틀렸습니다.")
    out["skipped_back"] = pair_claim(project=project, reviewer=reviewer).pk
    undone = review_undo(project=project, reviewer=reviewer)
    out["undone"] = [undone.pk, undone.status, undone.version, undone.claimed_by_id == reviewer.pk]
    out["history"] = list(ReviewDecision.objects.order_by("id").values_list("pair_id", "decision", "version_before"))
    out["ids"] = ids
    print(json.dumps(out))
""")


def test_claim_skip_decide_and_undo_on_sqlite(tmp_path):
    out = run_on_sqlite(SQLITE_QUEUE, tmp_path)
    a, b, c, d = out["ids"]
    assert out["vendor"] == "sqlite"
    assert out["reload"] == [a, a]  # a reload gives back the held pair
    assert out["preloaded"] == b  # the page's preload takes the next one
    assert out["other_gets"] == c  # another reviewer never gets a held pair
    assert out["edited"] == ["edited", 2, "고친 질문?"]
    assert [m.split(" ")[0] for m in out["conflicts"]] == ["other", "This"]  # their lease; a stale version
    assert out["next"] == d  # the skipped pair waits behind the rest of the queue ...
    assert out["skipped_back"] == a  # ... and comes back when nothing else is left
    assert out["undone"] == [d, "pending", 3, True]  # the undo gives the rejected pair back, leased
    assert out["history"] == [[a, "skip", 1], [b, "edit", 1], [d, "reject", 1], [d, "undo", 2]]


SQLITE_BESIDE_A_WRITER = textwrap.dedent("""
    import json
    import threading
    import time

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from tests.factories import make_pairs, make_project, make_user
    from workbench.generation.models import QAPair
    from workbench.review.services import ReviewInput, pair_claim, pair_review, review_undo

    call_command("migrate", verbosity=0)
    owner, reviewer = make_user("owner"), make_user("reviewer")
    project = make_project(admins=[owner], reviewers=[reviewer])
    pairs = make_pairs(project, 6)
    writing, done = threading.Event(), []

    def worker_store():  # as the GPU worker's writer thread: a transaction that writes and holds the lock a while
        with transaction.atomic():
            QAPair.objects.filter(pk=pairs[-1].pk).update(question="저장 중인 질문?")
            writing.set()
            time.sleep(1.5)
        done.append(time.monotonic())
        connection.close()

    out = {"vendor": connection.vendor, "decided": []}
    for i, decision in enumerate(("approve", "reject", "undo")):
        pair = pair_claim(project=project, reviewer=reviewer)
        writer = threading.Thread(target=worker_store)
        writer.start()
        writing.wait()
        if decision == "undo":
            out["decided"].append(review_undo(project=project, reviewer=reviewer).status)
        else:
            reason = "틀린 답." if decision == "reject" else ""
            out["decided"].append(pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput(decision, pair.version, reason=reason)).status)
        out.setdefault("after_writer", []).append(len(done) == i + 1)  # the writer had committed
        writer.join()
        writing.clear()
    print(json.dumps(out))
""")


def test_decisions_wait_for_a_worker_holding_the_write_lock_instead_of_failing(tmp_path):
    """On SQLite a decision made while the GPU worker stores results waits for the worker's transaction and is recorded
    ("database is locked" at once was a 500 in the review page)."""
    out = run_on_sqlite(SQLITE_BESIDE_A_WRITER, tmp_path)
    assert out["vendor"] == "sqlite"
    assert out["decided"] == ["approved", "rejected", "pending"]
    assert out["after_writer"] == [True, True, True]  # each waited for the writer's commit


SQLITE_CLAIMS_AT_ONCE = textwrap.dedent("""
    import json
    import threading

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tests.factories import make_pairs, make_project, make_user
    from workbench.generation.models import QAPair
    from workbench.review.services import pair_claim

    call_command("migrate", verbosity=0)
    owner, reviewer = make_user("owner"), make_user("reviewer")
    project = make_project(admins=[owner], reviewers=[reviewer])
    make_pairs(project, 20)
    connection.close()
    start, got = threading.Barrier(8), []

    def claim():
        start.wait()
        got.append(pair_claim(project=project, reviewer=reviewer).pk)
        connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = list(QAPair.objects.filter(claimed_by=reviewer).values_list("pk", flat=True))
    print(json.dumps({"got": sorted(set(got)), "held": held, "answers": len(got)}))
""")


def test_claims_of_one_reviewer_at_once_lease_one_pair_on_sqlite(tmp_path):
    """Two tabs (or a double click) asking for the next pair at the same moment get the same pair, not one each."""
    out = run_on_sqlite(SQLITE_CLAIMS_AT_ONCE, tmp_path)
    assert out["answers"] == 8 and len(out["got"]) == 1 and out["held"] == out["got"]
