"""How busy the `slots` scheduler keeps its slots, by simulation (no GPU): the same refill policy as
`workers/scheduler.py` (refill once 1/16 of the slots are free, check every 4 steps; once no prompt waits, the running
sequences move to the lower half of the slots whenever they fit there), outputs of fixed length or uniform in 60-256
tokens. Prints decode steps and the share of slot-steps that produce a token, per job size; and, for the variable
lengths, the decode time those steps take as a share of the time the same tokens take with all 256 slots busy, with
and without the tail moves.

The step-time model: `slots_profile.py` measured, on an H100 with every slot running, 16.70 / 11.93 / 9.56 / 8.61 / 8.03
ms at 256 / 128 / 64 / 32 / 16 slots, about 7.45 ms + 0.036 ms per slot. Of the per-slot part, the model puts 0.027 ms
on reading the slot's cache (a finished slot reads one block instead) and 0.009 ms on its row of the matmuls (paid by
every slot of the step, running or not); that split is an estimate from the attention kernel's share, not measured.
A model from measured step times, not a GPU run; prefill is left out.

    python benchmarks/slots_schedule.py [--slots 256] [--sizes 192,384,768,1024,1536,4096]
"""

from __future__ import annotations

import argparse
import random

BASE_MS, ROW_MS, RUNNING_MS = 7.45, 0.009, 0.027  # see above


def step_ms(size: int, running: int) -> float:
    return BASE_MS + ROW_MS * size + RUNNING_MS * running


def simulate(n: int, *, slots: int, fixed: bool, threshold: int, check: int, compact: bool, seed: int = 1):
    """Returns (decode steps, share of slot-steps producing a token, decode milliseconds, tokens)."""
    rng = random.Random(seed)
    lengths = [256 if fixed else rng.randint(60, 256) for _ in range(n)]
    queue, remaining, occupied, free = list(range(n)), [0] * slots, [False] * slots, list(range(slots))
    steps = busy = 0
    ms = 0.0
    size = slots
    while queue or len(free) < slots:
        if queue and free and (len(free) >= threshold or len(free) == slots or len(queue) <= len(free)):
            while queue and free:
                slot = free.pop()
                remaining[slot], occupied[slot] = lengths[queue.pop(0)] - 1, True  # the prefill samples the first token
        for _ in range(check):
            steps += 1
            ms += step_ms(size, sum(1 for slot in range(slots) if occupied[slot] and remaining[slot] > 0))
            for slot in range(slots):
                if occupied[slot] and remaining[slot] > 0:
                    remaining[slot] -= 1
                    busy += 1
        for slot in range(slots):
            if occupied[slot] and remaining[slot] == 0:
                occupied[slot] = False
                free.append(slot)
        if compact and not queue:
            # Only how many run matters here, not which slots: halve while the running ones fit in half.
            while size > 16 and sum(occupied) <= size // 2:
                size //= 2
    return steps, busy / (steps * slots), ms, busy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--sizes", default="192,384,768,1024,1536,4096")
    args = parser.parse_args()
    full_ms = step_ms(args.slots, args.slots) / args.slots  # per token with every slot busy
    print(
        f"{'sequences':>9} {'fixed: steps':>13} {'busy':>6} {'variable: steps':>16} {'busy':>6} "
        f"{'variable decode time vs all busy: no moves':>44} {'tail moves':>11}"
    )
    for n in [int(x) for x in args.sizes.split(",")]:
        opts = dict(slots=args.slots, threshold=max(1, args.slots // 16), check=4)
        f_steps, f_busy, _, _ = simulate(n, fixed=True, compact=False, **opts)
        v_steps, v_busy, v_ms, v_tokens = simulate(n, fixed=False, compact=False, **opts)
        _, _, c_ms, c_tokens = simulate(n, fixed=False, compact=True, **opts)
        print(
            f"{n:>9} {f_steps:>13} {f_busy:>6.0%} {v_steps:>16} {v_busy:>6.0%} "
            f"{v_tokens * full_ms / v_ms:>44.0%} {c_tokens * full_ms / c_ms:>11.0%}"
        )


if __name__ == "__main__":
    main()
