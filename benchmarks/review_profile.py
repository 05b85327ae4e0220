"""Server-side cost of one review (claim + review through the API), in process: CPU ms per call, SQL queries per
call, and the functions that take the time (cProfile). Complements `review_queue.py`, which measures over HTTP.

    python benchmarks/review_profile.py [--pairs 10000] [--reviews 500] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

from _django import setup


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10000)
    parser.add_argument("--reviews", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args()
    setup("workbench_bench_review_profile")
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from review_queue import seed

    slug, tokens = seed(args.pairs, 1)
    client = Client(HTTP_AUTHORIZATION=f"Token {tokens[0]}", HTTP_HOST="127.0.0.1", secure=True)

    def one():
        pair = client.post(f"/api/projects/{slug}/queue/claim").json()
        response = client.post(
            f"/api/pairs/{pair['id']}/review",
            json.dumps({"decision": "approve", "version": pair["version"]}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content

    for _ in range(20):
        one()
    with CaptureQueriesContext(connection) as queries:
        one()
    print(f"SQL per review (claim + review): {len(queries)}")
    for q in queries.captured_queries:
        print("   ", q["sql"][:150])
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.reviews):
        one()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"{args.reviews} reviews: {wall / args.reviews * 1000:.2f} ms wall, {cpu / args.reviews * 1000:.2f} ms CPU of this "
        f"process per review (two calls), {args.reviews / wall:.0f} reviews/s on one core, database included"
    )
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(200):
        one()
    profile.disable()
    pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
