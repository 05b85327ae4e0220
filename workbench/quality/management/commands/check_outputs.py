"""`manage.py check_outputs INPUT.jsonl [--out OUTPUT.jsonl]`: run the filters offline (no database, no server).

Input lines: {"id": any, "source": str, "output": str, "finish_reason": "stop" | "length" | null (optional),
"title": str (optional)}. Output lines, one per input line, in order:
{"id": ..., "question": str | null, "answer": str | null, "flags": [sorted names], "scores": {name: number}}.
`duplicate` compares each question with the earlier lines of the same source and of the whole file.
"""

from __future__ import annotations

import json
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
            source_file = sys.stdin if input == "-" else open(input, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {input}: {exc.strerror}") from None
        # Validate the whole file before writing anything: a bad line stops the command with its number.
        records = []
        with source_file:
            for number, line in enumerate(source_file, start=1):
                if not line.strip():
                    continue
                records.append((number, _record(line, number)))
        duplicates = DuplicateIndex()
        per_source: dict[str, DuplicateIndex] = {}
        sink = open(out, "w", encoding="utf-8") if out else self.stdout
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
        finally:
            if out:
                sink.close()


def _record(line: str, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CommandError(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise CommandError(f"line {number}: expected a JSON object")
    for name in ("id", "source", "output"):
        if name not in record:
            raise CommandError(f"line {number}: missing field {name!r}")
    for name in ("source", "output"):
        if not isinstance(record[name], str):
            raise CommandError(f"line {number}: {name!r} must be a string")
    if record.get("finish_reason") not in FINISH_REASONS:
        raise CommandError(f'line {number}: finish_reason must be "stop", "length" or null, not {record["finish_reason"]!r}')
    if "title" in record and record["title"] is not None and not isinstance(record["title"], str):
        raise CommandError(f"line {number}: 'title' must be a string")
    return record
