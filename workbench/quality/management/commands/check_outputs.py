"""`manage.py check_outputs INPUT.jsonl [--out OUTPUT.jsonl]`: run the filters offline (no database, no server).

Input lines: {"id": any, "source": str, "output": str, "finish_reason": "stop" | "length" | null (optional),
"title": str (optional)}. Output lines, one per input line, in order:
{"id": ..., "question": str | null, "answer": str | null, "flags": [sorted names], "scores": {name: number}}.
`duplicate` compares each question with the earlier lines of the same source and of the whole file.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from workbench.quality.filters import DuplicateIndex, assess

FINISH_REASONS = {"stop", "length", None}


class Command(BaseCommand):
    help = "Run the quality filters over model outputs in a JSONL file, without touching the database."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("input", metavar="INPUT.jsonl")
        parser.add_argument("--out", metavar="OUTPUT.jsonl", default=None)

    def handle(self, *args, input, out, **options):
        try:
            source_file = sys.stdin.buffer if input == "-" else open(input, "rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {input}: {exc.strerror}") from None
        # Validate the whole file before writing anything: a bad line stops the command with its number.
        records = []
        with source_file:
            for number, raw in enumerate(source_file, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]  # a byte-order mark, as Windows editors save UTF-8
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CommandError(
                        f"line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                    ) from None
                if not line.strip():
                    continue
                records.append((number, _record(line, number)))
        duplicates = DuplicateIndex()
        per_source: dict[str, DuplicateIndex] = {}
        try:
            sink = open(out, "w", encoding="utf-8") if out else self.stdout
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror}") from None
        try:
            for number, record in records:
                result = assess(record["source"], record["output"], finish_reason=record.get("finish_reason"))
                scores = dict(result.scores)
                flags = set(result.flag_names)
                if result.question:
                    local = per_source.setdefault(record["source"], DuplicateIndex())
                    same, same_sim = local.check_and_add(number, result.question)
                    other, other_sim = duplicates.check_and_add(number, result.question)
                    similarity = max(same_sim if same is not None else 0.0, other_sim if other is not None else 0.0)
                    if similarity:
                        flags.add("duplicate")
                        scores["duplicate"] = round(similarity, 3)
                line = json.dumps(
                    {
                        "id": record["id"],
                        "question": result.question,
                        "answer": result.answer,
                        "flags": sorted(flags),
                        "scores": scores,
                    },
                    ensure_ascii=False,
                )
                sink.write(line + "\n")
            sink.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): nothing more is wanted, and nothing went wrong. Later writes of the
            # interpreter's own (its final flush) go nowhere instead of printing a traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            if out:
                sink.close()


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: would be written back as Infinity, which is not JSON
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _record(line: str, number: int) -> dict:
    try:
        record = json.loads(line, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise CommandError(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise CommandError(f"line {number}: invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # NaN or Infinity; an integer of more digits than Python converts
        raise CommandError(f"line {number}: invalid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise CommandError(f"line {number}: expected a JSON object")
    for name in ("id", "source", "output"):
        if name not in record:
            raise CommandError(f"line {number}: missing field {name!r}")
    for name in ("source", "output"):
        if not isinstance(record[name], str):
            raise CommandError(f"line {number}: {name!r} must be a string")
    reason = record.get("finish_reason")
    if not (reason is None or isinstance(reason, str)) or reason not in FINISH_REASONS:
        raise CommandError(f'line {number}: finish_reason must be "stop", "length" or null, not {reason!r}')
    if "title" in record and record["title"] is not None and not isinstance(record["title"], str):
        raise CommandError(f"line {number}: 'title' must be a string")
    try:  # a lone surrogate (\ud800) decodes from JSON but is no character: neither filtered nor written back
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        raise CommandError(
            f"line {number}: holds text that is not Unicode characters (a lone surrogate such as \\ud800)"
        ) from None
    return record
