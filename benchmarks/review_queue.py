"""The review queue under load: gunicorn serving the API, reviewers driven from a separate process.

Two load shapes, at 10,000 and 1,000,000 pending pairs in PostgreSQL:
  (a) capacity: 20 reviewers in a closed loop with no think time (claim -> review -> claim ...);
  (b) a working day: 200 reviewers with 2-5 s of think time between calls.
Prints p50/p95/p99 of each call, reviews/s, errors and duplicate claims.

    python benchmarks/review_queue.py [--pairs 10000,1000000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from _django import ROOT, setup

PORT = 8765


def seed(pairs: int, reviewers: int) -> tuple[str, list[str]]:
    """A project with `pairs` pending pairs (COPY) and reviewers with API tokens."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from workbench.documents.models import Chunk, SourceDocument
    from workbench.projects.services import project_create

    users = get_user_model().objects.bulk_create([get_user_model()(username=f"reviewer{pairs}-{i}") for i in range(reviewers)])
    project = project_create(slug=f"bench-{pairs}", name=f"bench {pairs}", reviewers=users)
    text = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다."
    doc = SourceDocument.objects.create(project=project, content_hash=f"bench-{pairs}", text=text)
    chunk = Chunk.objects.create(document=doc, chunking_key="k", index=0, text=text, start=0, end=len(text), size=len(text))
    rng = random.Random(1)
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY generation_qapair (project_id, chunk_id, question, answer, original_question, original_answer, status, "
            "flags, is_flagged, shuffle_key, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(pairs):
                flagged = i % 7 == 0
                q, a = f"대한민국의 주권은 누구에게 있나요? ({i})", f"국민에게 있습니다. ({i})"
                copy.write_row(
                    (
                        project.pk,
                        chunk.pk,
                        q,
                        a,
                        q,
                        a,
                        "pending",
                        '["echo"]' if flagged else "[]",
                        flagged,
                        rng.randrange(2**31),
                        1,
                        "now()",
                        "now()",
                    )
                )
        cursor.execute("ANALYZE generation_qapair")
    tokens = [Token.objects.create(user=u).key for u in users]
    return project.slug, tokens


class Reviewer(threading.Thread):
    def __init__(self, slug, token, stop_at, think, results):
        super().__init__(daemon=True)
        self.slug, self.token, self.stop_at, self.think, self.results = slug, token, stop_at, think, results
        self.rng = random.Random(token)

    def call(self, conn, method, path, body=None):
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json", "Connection": "keep-alive"}
        start = time.perf_counter()
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, (time.perf_counter() - start) * 1000

    def run(self):
        if self.think:
            time.sleep(self.rng.uniform(0, self.think[1]))  # a working day: reviewers do not all start at once
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        while time.monotonic() < self.stop_at:
            try:
                status, data, ms = self.call(conn, "POST", f"/api/projects/{self.slug}/queue/claim")
                self.results["claim"].append(ms)
                if status == 204:
                    break
                if status != 200:
                    self.results["errors"].append(f"claim {status}")
                    continue
                pair = json.loads(data)
                self.results["claimed"].append(pair["id"])
                if self.think:
                    time.sleep(self.rng.uniform(*self.think))
                decision = {"decision": "approve", "version": pair["version"]}
                status, data, ms = self.call(conn, "POST", f"/api/pairs/{pair['id']}/review", decision)
                self.results["review"].append(ms)
                if status != 200:
                    self.results["errors"].append(f"review {status} {data[:80]!r}")
                else:
                    self.results["reviews"] += 1
                if self.think:
                    time.sleep(self.rng.uniform(*self.think))
            except (OSError, http.client.HTTPException) as exc:
                self.results["errors"].append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)


def drive(slug, tokens, *, seconds, think) -> dict:
    results = {"claim": [], "review": [], "claimed": [], "errors": [], "reviews": 0}
    lock_results = results
    stop_at = time.monotonic() + seconds
    threads = [Reviewer(slug, t, stop_at, think, lock_results) for t in tokens]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    results["elapsed"] = elapsed
    return results


def percentiles(values):
    if not values:
        return "-"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.1f} / p95 {q[94]:.1f} / p99 {q[98]:.1f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", default="10000,1000000")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    setup("workbench_bench_review")
    env = os.environ | {"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"}
    rows = []
    for pairs in [int(p) for p in args.pairs.split(",")]:
        t0 = time.perf_counter()
        slug, tokens = seed(pairs, 200)
        print(f"seeded {pairs:,} pairs in {time.perf_counter() - t0:.0f} s", flush=True)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "workbench.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--worker-class",
                "gthread",
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            for shape, count, think in (
                ("capacity: 20 reviewers, no think time", 20, None),
                ("working day: 200 reviewers, 2-5 s think time", 200, (2.0, 5.0)),
            ):
                r = drive(slug, tokens[:count], seconds=args.seconds, think=think)
                duplicates = len(r["claimed"]) - len(set(r["claimed"]))
                row = {
                    "pairs": pairs,
                    "shape": shape,
                    "reviews_per_s": r["reviews"] / r["elapsed"],
                    "reviews": r["reviews"],
                    "claim": percentiles(r["claim"]),
                    "review": percentiles(r["review"]),
                    "errors": len(r["errors"]),
                    "error_kinds": sorted(set(r["errors"]))[:5],
                    "duplicate_claims": duplicates,
                }
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print()
    for r in rows:
        print(
            f"{r['pairs']:>9,} pairs | {r['shape']:45} | {r['reviews_per_s']:7.1f} reviews/s | claim {r['claim']} | "
            f"review {r['review']} | errors {r['errors']} | duplicate claims {r['duplicate_claims']}"
        )


if __name__ == "__main__":
    main()
