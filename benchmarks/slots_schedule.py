"""How busy the `slots` scheduler keeps its slots, by simulation (no GPU): the same refill policy as
`workers/slots.py` (refill once 1/16 of the slots are free, check every 4 steps), outputs of fixed length or uniform in
60-256 tokens. Prints decode steps and the share of slot-steps that produce a token, per job size.

    python benchmarks/slots_schedule.py [--slots 256] [--sizes 192,384,768,1024,1536,4096]
"""
from __future__ import annotations

import argparse
import random


def simulate(n: int, *, slots: int, fixed: bool, threshold: int, check: int, seed: int = 1) -> tuple[int, float]:
    rng = random.Random(seed)
    lengths = [256 if fixed else rng.randint(60, 256) for _ in range(n)]
    queue, remaining, occupied, free = list(range(n)), [0] * slots, [False] * slots, list(range(slots))
    steps = busy = 0
    while queue or len(free) < slots:
        if queue and free and (len(free) >= threshold or len(free) == slots or len(queue) <= len(free)):
            while queue and free:
                slot = free.pop()
                remaining[slot], occupied[slot] = lengths[queue.pop(0)] - 1, True  # the prefill samples the first token
        for _ in range(check):
            steps += 1
            for slot in range(slots):
                if occupied[slot] and remaining[slot] > 0:
                    remaining[slot] -= 1
                    busy += 1
        for slot in range(slots):
            if occupied[slot] and remaining[slot] == 0:
                occupied[slot] = False
                free.append(slot)
    return steps, busy / (steps * slots)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--sizes", default="192,384,768,1024,1536,4096")
    args = parser.parse_args()
    print(f"{'sequences':>9} {'fixed: steps':>13} {'busy':>6} {'variable: steps':>16} {'busy':>6}")
    for n in [int(x) for x in args.sizes.split(",")]:
        f_steps, f_busy = simulate(n, slots=args.slots, fixed=True, threshold=max(1, args.slots // 16), check=4)
        v_steps, v_busy = simulate(n, slots=args.slots, fixed=False, threshold=max(1, args.slots // 16), check=4)
        print(f"{n:>9} {f_steps:>13} {f_busy:>6.0%} {v_steps:>16} {v_busy:>6.0%}")


if __name__ == "__main__":
    main()
