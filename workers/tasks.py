"""Tasks of the `gpu` queue. A task carries a batch id only; the batch row says what to generate."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time

from celery import shared_task
from django.conf import settings
from django.db import transaction

from workbench.generation import selectors
from workbench.generation import services as generation
from workbench.generation.models import PreflightStatus
from workbench.quality import services as quality
from workers.heartbeat import heartbeat_start

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine = None
_engine_key = None


def model_spec(parameters: dict):
    """What a run's frozen parameters ask this worker to load."""
    from workers.loading import ModelSpec

    return ModelSpec(
        base_model=parameters["base_model"],
        base_revision=parameters.get("base_model_revision", ""),
        adapter=parameters.get("adapter", ""),
        adapter_revision=parameters.get("adapter_revision", ""),
        cache_dir=str(settings.MODEL_CACHE_DIR) if settings.MODEL_CACHE_DIR.exists() else "",
    )


def engine_for(parameters: dict):
    """The model is loaded once per worker process, after the fork, on first use, and reused while the run's model
    and adapter stay the same; a different one replaces it (one model per GPU)."""
    global _engine, _engine_key
    from workers.engine import Engine
    from workers.loading import load_model

    spec = model_spec(parameters)
    with _lock:
        if _engine_key != spec or _engine is None:
            # The old model goes first (one model per GPU), and with it its key: a load that fails leaves no engine
            # and no key, so the next batch, of this project or any other, loads afresh instead of finding None.
            _engine = _engine_key = None
            import gc

            gc.collect()
            loaded = load_model(spec, device=settings.MODEL_DEVICE or None)
            _engine = Engine(
                loaded,
                backend=settings.GENERATION_BACKEND,
                max_batch=settings.GENERATION_MAX_BATCH,
                compile=settings.GENERATION_COMPILE,
                fp8=settings.GENERATION_FP8,
            )
            _engine_key = spec
            log.info(
                "loaded %s + %s on %s (%s, backend %s)",
                spec.base_model,
                spec.adapter,
                loaded.device,
                loaded.dtype,
                _engine.backend,
            )
        return _engine


def gpu_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


# max_retries=None on the task: Celery reads `self.retry(max_retries=None)` as "the task's default", 3, and would drop
# the message at its fourth retry (a batch alive through four looks, or looks and transient failures together). Retries
# are bounded by the batch instead: GENERATION_MAX_ATTEMPTS claims, and a live batch ends.
@shared_task(bind=True, name="workers.tasks.generate_batch", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def generate_batch(self, batch_id: int) -> None:
    from workers.engine import SamplingParams

    worker = self.request.hostname or socket.gethostname()
    batch = generation.batch_claim(batch_id=batch_id, worker=worker)
    if batch is None:
        if generation.batch_held_by_live_worker(batch_id=batch_id):  # look again once its heartbeat could be stale
            raise self.retry(countdown=settings.GENERATION_STALE_SECONDS)
        # Its holder's heartbeat may have gone stale between the two looks: claim once more before leaving it.
        batch = generation.batch_claim(batch_id=batch_id, worker=worker)
    if batch is None:
        return  # finished already, or its run was cancelled (or a worker took it over from its batch before)
    if batch.attempts > settings.GENERATION_MAX_ATTEMPTS:
        generation.batch_fail_exhausted(batch_id=batch_id)
        return
    heartbeat_start(batch, task_id=self.request.id)
    params = batch.run.parameters
    handover = None
    try:
        missing = generation.batch_missing_samples(batch=batch)
        if missing:
            engine = engine_for(params)
            requests = batch_requests(engine, params, batch, missing)
            seed = (params["seed"] + 7919 * batch.index + batch.attempts) % 2**31
            # Top-k and top-p resolved against the loaded checkpoint, as the card's `generate` call would; stored per sample.
            sampling = engine.resolve(
                SamplingParams(
                    temperature=params["temperature"],
                    top_p=params.get("top_p"),
                    top_k=params.get("top_k"),
                    max_new_tokens=params["max_new_tokens"],
                    seed=seed,
                )
            )
            used = {
                "temperature": sampling.temperature,
                "top_k": sampling.top_k,
                "top_p": sampling.top_p,
                "max_new_tokens": sampling.max_new_tokens,
            }
            # Stored as they finish, a few dozen at a time, on a thread of their own while the GPU goes on: a worker
            # lost mid-batch keeps what it had stored, and the retry generates only the rest; reviewers see the first
            # pairs of a batch before its last ones are done.
            with Writer(
                seed=seed, worker=worker, device_name=gpu_name(engine.loaded.device), precision=engine.precision, sampling=used
            ) as writer:
                writer.expect(batch, len(requests))
                if settings.GENERATION_HANDOVER:
                    handover = Handover(
                        run_id=batch.run_id,
                        worker=worker,
                        task_id=self.request.id,
                        engine=engine,
                        params=params,
                        writer=writer,
                        until=time.monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2,
                    )
                for _index, result in engine.generate_stream(requests, sampling, more=handover):
                    writer.add(result)
        generation.batch_finish(batch_id=batch_id, attempt=batch.attempts)
        for taken in handover.taken if handover else ():
            generation.batch_finish(batch_id=taken.pk, attempt=taken.attempts)  # stored in full; done by the writer already
    except Exception as exc:  # a transient failure is retried up to GENERATION_MAX_ATTEMPTS; any other fails the batch
        lost = _batch_lost(exc)
        transient = lost is None and is_transient(exc)
        if lost is not None:  # cancelled, or taken back by the sweep: not an error of this worker's
            log.info("batch %s stopped: %s", batch_id, lost)
        else:
            log.exception("batch %s failed (%s)", batch_id, "transient" if transient else "not retried")
        from django.db import connection

        connection.close_if_unusable_or_obsolete()  # a lost database connection is opened afresh for the release
        if handover:
            handover.close()  # a batch it is claiming right now is released with the others, not left beating
        for taken in handover.taken if handover else ():
            # Back to the queue: its own message (still in the broker) or the sweep claims it again, and the next
            # attempt generates only what was not stored.
            try:
                generation.batch_release(
                    batch_id=taken.pk, error=f"{type(exc).__name__}: {exc}", transient=True, attempt=taken.attempts
                )
            except Exception:
                log.exception("batch %s, taken over from batch %s, could not be released", taken.pk, batch_id)
        try:
            again = generation.batch_release(
                batch_id=batch_id, error=f"{type(exc).__name__}: {exc}", transient=transient, attempt=batch.attempts
            )
        except Exception as release_exc:
            if not is_transient(release_exc):
                raise
            # The row could not be written; the retried message claims the batch again and counts the attempt.
            log.exception("batch %s could not be released", batch_id)
            again = True
        if again:
            raise self.retry(exc=exc, countdown=min(60, 2**batch.attempts)) from None


def context_overflow(chunk_id: int, prompt_tokens: int, max_new_tokens: int, limit: int) -> str:
    """Why a chunk's prompt and its new tokens do not fit the model's context, with the change that makes them fit:
    smaller chunks cannot help where the new tokens alone take the whole context, a lower max new tokens cannot help
    where the prompt alone does."""
    fits = limit - prompt_tokens
    if fits < 1:
        fix = "re-chunk the project smaller (the prompt alone fills the context)"
        if max_new_tokens >= limit:
            fix += f", and lower the project's max new tokens below {limit}"
    elif max_new_tokens >= limit:
        fix = f"lower the project's max new tokens (they alone fill the context; this chunk leaves room for {fits})"
    else:
        fix = f"lower the project's max new tokens to {fits} or less, or re-chunk the project smaller"
    return (
        f"chunk {chunk_id}: prompt of {prompt_tokens} tokens plus {max_new_tokens} new tokens exceeds the model's "
        f"context of {limit}; {fix}"
    )


def batch_requests(engine, params: dict, batch, missing) -> list:
    """The engine's requests for a batch's missing samples, keyed (chunk, sample, batch)."""
    from workers.engine import SampleRequest
    from workers.prompts import encode_chat_prompt

    prompts: dict[int, list[int]] = {}
    requests = []
    limit = getattr(engine.model.config, "max_position_embeddings", None)
    for chunk, sample_index in missing:
        if chunk.pk not in prompts:
            prompts[chunk.pk] = encode_chat_prompt(
                engine.tokenizer, params["prompt_template"], text=chunk.text, title=chunk.document.title
            )
            if limit and len(prompts[chunk.pk]) + params["max_new_tokens"] > limit:
                raise ValueError(context_overflow(chunk.pk, len(prompts[chunk.pk]), params["max_new_tokens"], limit))
        requests.append(SampleRequest((chunk.pk, sample_index, batch.pk), prompts[chunk.pk]))
    return requests


class Handover:
    """The engine's `more`: while this task's last sequences finish, claim the run's next queued batch (the same
    conditional claim as a message's, `batch_claim_next`), start its heartbeat, and hand its requests to the same
    slots, so the GPU does not idle through a tail between batches. Prepared on a thread of its own while the GPU
    goes on. A batch taken over is finished by the writer once all its samples are stored; its own message, when it
    comes, finds it running under a live heartbeat or done. A worker killed during the overlap leaves each batch it
    held running under a heartbeat that goes stale: its message or the sweep claims it again, and that attempt
    generates only the samples not stored. Stops taking batches at `until` (half the task's soft time limit), so a
    task ends well before its limit."""

    def __init__(self, *, run_id: int, worker: str, task_id: str, engine, params: dict, writer: Writer, until: float):
        self.run_id, self.worker, self.task_id = run_id, worker, task_id
        self.engine, self.params, self.writer, self.until = engine, params, writer, until
        self.taken: list = []
        self.thread: threading.Thread | None = None
        self.prepared = None
        self.done = False

    def __call__(self, wait: bool):
        if self.done:
            return None
        if self.thread is None:
            if time.monotonic() > self.until:
                self.done = True
                return None
            self.thread = threading.Thread(target=self._prepare, name=f"handover-run-{self.run_id}", daemon=True)
            self.thread.start()
        if wait:
            self.thread.join()
        elif self.thread.is_alive():
            return []
        self.thread, prepared, self.prepared = None, self.prepared, None
        if isinstance(prepared, BaseException):
            raise RuntimeError(f"taking over the next batch failed: {type(prepared).__name__}: {prepared}") from prepared
        if prepared is None:
            self.done = True
        return prepared

    def close(self) -> None:
        """Stop taking batches and wait for a claim in progress, so that what it claimed is in `taken`."""
        self.done = True
        if self.thread is not None:
            self.thread.join(timeout=120)

    def _prepare(self) -> None:
        from django.db import connection

        try:
            while True:
                batch = generation.batch_claim_next(run_id=self.run_id, worker=self.worker)
                if batch is None:
                    self.prepared = None
                    return
                heartbeat_start(batch, task_id=self.task_id, keep_others=True)
                self.taken.append(batch)
                try:
                    missing = generation.batch_missing_samples(batch=batch)
                    requests = batch_requests(self.engine, self.params, batch, missing)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    # Its own error (e.g. a chunk too long for the context): that batch fails, this task goes on.
                    log.exception("batch %s, taken over, failed", batch.pk)
                    self.taken.remove(batch)
                    generation.batch_release(
                        batch_id=batch.pk, error=f"{type(exc).__name__}: {exc}", transient=False, attempt=batch.attempts
                    )
                    continue
                if not requests:  # stored in full before (a redelivered batch)
                    self.taken.remove(batch)
                    generation.batch_finish(batch_id=batch.pk, attempt=batch.attempts)
                    continue
                log.info("batch %s taken over by %s (%d samples)", batch.pk, self.worker, len(requests))
                self.writer.expect(batch, len(requests))
                self.prepared = requests
                return
        except BaseException as exc:  # handed to the task: it stops and releases what it holds
            self.prepared = exc
        finally:
            connection.close()  # this thread's own connection


def _chain(exc: BaseException | None):
    """The error and what it was raised from, in turn (the writer raises a storing failure from its cause)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)


def _batch_lost(exc: BaseException) -> BaseException | None:
    """The BatchLost behind an error: the batch is no longer this attempt's, because its run was cancelled or the sweep
    queued it again."""
    return next((e for e in _chain(exc) if isinstance(e, generation.BatchLost)), None)


def is_transient(exc: BaseException) -> bool:
    """Errors worth another attempt: the database connection (OperationalError, InterfaceError), CUDA out of memory,
    lost connections and timeouts, also when wrapped (the writer raises a storing failure from its cause). Everything
    else (model missing, adapter mismatch, prompt too long for the context, a bug) would fail the same way again."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import InterfaceError, OperationalError

    return any(
        isinstance(e, (OperationalError, InterfaceError, ConnectionError, TimeoutError, SoftTimeLimitExceeded))
        or type(e).__name__ == "OutOfMemoryError"  # torch.cuda.OutOfMemoryError
        or "CUDA out of memory" in str(e)
        for e in _chain(exc)
    )


@shared_task(
    bind=True,
    name="workers.tasks.preflight_run",
    acks_late=True,
    soft_time_limit=min(120, settings.CELERY_TASK_SOFT_TIME_LIMIT),
    time_limit=min(150, settings.CELERY_TASK_TIME_LIMIT),
)
def preflight_run(self, run_id: int) -> None:
    """Check, in a GPU worker, that the run's base model, adapter and tokenizer resolve here (config and tokenizer
    files, no weights). A failure fails the run at once with what is missing and how to fix it."""
    from workers.loading import ModelLoadError, preflight

    worker = self.request.hostname or socket.gethostname()
    run = selectors.run_for_preflight(run_id=run_id)
    if run is None:
        return  # finished, cancelled or checked already
    try:
        report = preflight(model_spec(run.parameters), max_new_tokens=run.parameters.get("max_new_tokens"))
    except ModelLoadError as exc:
        generation.run_preflight_record(run_id=run_id, worker=worker, status=PreflightStatus.FAILED, report=str(exc))
    except Exception as exc:  # e.g. the hub did not answer in time: the batches will tell; the run goes on
        log.exception("preflight of run %s could not finish", run_id)
        generation.run_preflight_record(
            run_id=run_id,
            worker=worker,
            status=PreflightStatus.INCONCLUSIVE,
            report=f"The check could not finish: {type(exc).__name__}: {exc}",
        )
    else:
        generation.run_preflight_record(run_id=run_id, worker=worker, status=PreflightStatus.PASSED, report=report)


_DONE = object()


class Writer:
    """Stores results on a thread of its own, GENERATION_SAVE_EVERY at a time per batch, while the engine goes on
    generating: the GPU does not wait for the database and the quality filters (benchmarks/store.py). A result's key is
    (chunk, sample, batch); a batch whose expected samples are all stored is finished at once, also while the task
    goes on with batches it took over. Leaving the block stores everything added before the task goes
    on, also when generation failed; a failure to store stops the generation at the next result and is raised in the
    task (what was not stored, the retry generates again)."""

    def __init__(self, *, seed: int, worker: str, device_name: str, precision: str, sampling: dict):
        import queue

        self.every = settings.GENERATION_SAVE_EVERY
        self.args = (seed, worker, device_name, precision, sampling)
        self.batches: dict[int, list] = {}  # batch id -> [batch, samples still to store]
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="store-results", daemon=True)

    def expect(self, batch, samples: int) -> None:
        self.batches[batch.pk] = [batch, samples]

    def __enter__(self):
        # The writer's work (parsing, the filters, the database) would hold the GIL for up to Python's 5 ms at a time
        # while the generating thread waits to queue the GPU's next step; a shorter interval hands it back sooner.
        self.switch_interval = sys.getswitchinterval()
        if settings.GENERATION_SWITCH_INTERVAL_US:
            sys.setswitchinterval(settings.GENERATION_SWITCH_INTERVAL_US / 1e6)
        self.thread.start()
        return self

    def add(self, result) -> None:
        self._raise_if_failed()
        self.queue.put(result)

    def __exit__(self, exc_type, exc, tb):
        self.queue.put(_DONE)
        self.thread.join()
        sys.setswitchinterval(self.switch_interval)
        if exc_type is None:
            self._raise_if_failed()
        return False

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"storing the results failed: {type(self.error).__name__}: {self.error}") from self.error

    def _work(self) -> None:
        from django.db import connection

        pending: dict[int, list] = {}
        done = False
        try:
            while not done:
                item = self.queue.get()
                if item is _DONE:
                    done = True
                else:
                    pending.setdefault(item.key[2], []).append(item)
                for batch_id, results in list(pending.items()):
                    entry = self.batches[batch_id]
                    while len(results) >= self.every or (results and (done or len(results) >= entry[1])):
                        part, results[:] = results[: self.every], results[self.every :]
                        _store(entry[0], part, *self.args)
                        entry[1] -= len(part)
                        if entry[1] <= 0:  # stored in full: done now, also while the task goes on with others
                            generation.batch_finish(batch_id=batch_id, attempt=entry[0].attempts)
        except BaseException as exc:  # handed to the task: it stops generating and the batch is retried
            if isinstance(exc, generation.BatchLost):  # cancelled or taken back: the task says so
                log.info("storing results stopped: %s", exc)
            else:
                log.exception("storing results failed")
            self.error = exc
        finally:
            connection.close()  # this thread's own connection


def _store(batch, results, seed: int, worker: str, device_name: str, precision: str, sampling: dict) -> None:
    with transaction.atomic():  # pairs become visible to reviewers already flagged
        pair_ids = generation.generations_save(
            batch=batch,
            samples=[
                generation.GeneratedSample(
                    chunk_id=r.key[0],
                    sample_index=r.key[1],
                    raw_text=r.text,
                    finish_reason=r.finish_reason,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    seed=seed,
                    duration_ms=r.duration_ms,
                )
                for r in results
            ],
            worker=worker,
            gpu_name=device_name,
            precision=precision,
            sampling=sampling,
        )
        # Flag the new pairs as soon as they are saved, before any reviewer can claim them.
        quality.pairs_assess(pair_ids=pair_ids)
        generation.run_refresh(run_id=batch.run_id)  # live progress within a batch
