"""Which prompt goes into which slot when: the `slots` backend's refill policy, driving a `SlotDecoder`.

Every few steps the host looks at which slots finished, collects their tokens and refills those slots with the next
prompts (length-sorted prefills of several prompts at once), so a short answer frees its slot for new work; once no
prompt waits, the running sequences move into the lower half of the slots whenever they fit there and the step runs on
that half, so a job's tail stops paying for empty slots. The finished sequences reach the caller only once the next
round of steps is queued: whatever the caller does with them (decoding, storing) runs while the GPU works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from workers.decoder import SlotDecoder


@dataclass
class Finished:
    index: int
    tokens: list[int]
    duration_ms: int


class SlotScheduler:
    """Generates for a list of prompts with per-prompt budgets on `decoder`; `run` yields each prompt's tokens as it
    finishes."""

    def __init__(self, decoder: SlotDecoder, *, prefill_tokens: int = 16_384, check_every: int = 4, refill_at: int | None = None):
        self.decoder = decoder
        self.prefill_tokens, self.check_every = prefill_tokens, check_every
        # Free slots that trigger a refill (prefill) while others run.
        self.refill_at = refill_at or max(1, decoder.slots // 16)

    def _compact(self, n: int, occupant: list, started: list) -> int:
        """With no prompt waiting: while the running sequences fit in the lower half of the first n slots, move them
        there and halve n. Returns the new n."""
        while n > self.decoder.sizes[-1]:
            half = n // 2
            running = [s for s in range(n) if occupant[s] is not None]
            if len(running) > half:
                break
            holes = iter(s for s in range(half) if occupant[s] is None)
            for source in (s for s in running if s >= half):
                target = next(holes)
                self.decoder.move(source, target)
                occupant[target], started[target], occupant[source] = occupant[source], started[source], None
            n = half
        return n

    def run(self, prompts: list[list[int]], budgets: list[int], more=None):
        """Yield a `Finished` for every prompt, in the order they finish.

        `more(wait)`, when given, hands over further prompts while this call runs: it is asked whenever no prompt waits
        (without waiting while slots still decode, waiting once none does) and answers `(prompts, budgets)`, empty
        lists for nothing yet, or None for nothing more. Their indices follow the earlier prompts'. So the slots that
        one job's last sequences leave free fill with the next job's prompts instead of idling through a tail."""
        decoder, slots = self.decoder, self.decoder.slots
        prompts, budgets = list(prompts), list(budgets)
        # Longest first, so similar lengths prefill together; samples of one prompt stay adjacent (one prefill).
        first_seen: dict[tuple, int] = {}
        group_of = [first_seen.setdefault(tuple(p), i) for i, p in enumerate(prompts)]

        def ordered(indices):
            return sorted(indices, key=lambda i: (-len(prompts[i]), group_of[i]))

        queue = ordered(range(len(prompts)))
        occupant: list[int | None] = [None] * slots
        started: list[float] = [0.0] * slots
        free = list(range(slots))
        n = slots
        prefix_wanted = None  # a shorter shared prefix, once handed-over prompts do not all start with the current one
        pending: list[Finished] = []  # finished in the last round, handed to the caller while the next one runs
        decoder.clear()
        with torch.inference_mode():
            decoder.set_prefix(decoder.shared_prefix(prompts))
            while True:
                if more is not None and not queue:
                    waiting = len(free) == slots
                    if waiting:
                        yield from pending  # before blocking: the caller may be waiting for these to finish a job
                        pending = []
                    got = more(waiting)
                    if got is None or (waiting and not got[0]):
                        more = None
                    elif got[0]:
                        start = len(prompts)
                        prompts += [list(p) for p in got[0]]
                        budgets += list(got[1])
                        group_of += [first_seen.setdefault(tuple(prompts[i]), i) for i in range(start, len(prompts))]
                        queue = ordered(range(start, len(prompts)))
                        prefix = decoder.prefix
                        if prefix and any(tuple(prompts[i][: len(prefix)]) != prefix for i in queue):
                            prefix_wanted = decoder.common_prefix([list(prefix)] + [prompts[i] for i in queue])
                        n = slots  # the refills go into any free slot, so the step runs on all of them again
                        free = sorted(s for s in range(slots) if occupant[s] is None)
                if not queue and len(free) == slots:
                    yield from pending
                    return
                # Refill free slots once enough are free to make a prefill worth it (or nothing else is running).
                if queue and free and (len(free) >= self.refill_at or len(free) == slots or len(queue) <= len(free)):
                    if prefix_wanted is not None:
                        decoder.set_prefix(prefix_wanted, slot=free[0])  # the slot stays free: a budget of one token
                        prefix_wanted = None
                    while queue and free:
                        group_slots, group = [], []
                        width = len(prompts[queue[0]]) - len(decoder.prefix)  # the tokens a prefill runs per prompt
                        distinct: set[int] = set()
                        while (
                            queue and free and (len(distinct | {group_of[queue[0]]})) * width <= max(self.prefill_tokens, width)
                        ):
                            index = queue.pop(0)
                            slot = free.pop(0)
                            group.append(index)
                            distinct.add(group_of[index])
                            group_slots.append(slot)
                            occupant[slot] = index
                            started[slot] = time.perf_counter()
                        decoder.prefill(group_slots, [list(prompts[i]) for i in group], [budgets[i] for i in group])
                if len(free) == slots:
                    continue  # nothing to decode: ask for more again, waiting this time
                for _ in range(self.check_every):
                    decoder.step(n)
                # The steps are queued on the GPU: the caller takes the last round's sequences meanwhile.
                yield from pending
                pending = []
                done = decoder.finished.tolist()
                newly = [s for s in range(slots) if occupant[s] is not None and done[s]]
                if not newly:
                    continue
                counts = decoder.count.tolist()
                out = decoder.out[newly].tolist()
                now = time.perf_counter()
                for row, slot in zip(out, newly):
                    pending.append(Finished(occupant[slot], row[: counts[slot]], int((now - started[slot]) * 1000)))
                    occupant[slot] = None
                    free.append(slot)
                if not queue:
                    n = self._compact(n, occupant, started)
                    free = [s for s in range(slots) if occupant[s] is None]
                free.sort()
