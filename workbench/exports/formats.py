"""Dataset formats: one row per approved pair, shaped as fine-tuning tools read it."""

from __future__ import annotations

import hashlib

from workbench.exports.models import ExportFormat

FORMATS = tuple(ExportFormat.values)
EXTENSIONS = {"messages": "jsonl", "alpaca": "jsonl", "sharegpt": "jsonl", "csv": "csv", "parquet": "parquet", "dpo": "jsonl"}
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection); Excel also reads the full-width
# forms as their ASCII twins, and skips whitespace and line breaks before them.
_FORMULA_CHARS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # the last four: ＝＋－＠
_CONTROL_START = ("\t", "\r", "\n")


def neutralize_cell(value):
    """A text cell a spreadsheet would run as a formula, prefixed with an apostrophe so it is shown as text.

    defusedcsv covers only the first character's ASCII forms; this also catches leading whitespace and line breaks
    and the full-width forms."""
    if isinstance(value, str) and (value.startswith(_CONTROL_START) or value.lstrip().startswith(_FORMULA_CHARS)):
        return "'" + value
    return value


def prompt_text(row: dict, *, grounded: bool) -> str:
    """The user turn: the question alone, or the source chunk followed by the question (genstruct-style grounding)."""
    if grounded:
        return f"{row['chunk_text']}\n\n{row['question']}"
    return row["question"]


def build(fmt: str, row: dict, *, grounded: bool, metadata: bool) -> dict:
    prompt = prompt_text(row, grounded=grounded)
    if fmt == "messages":
        out = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["answer"]}]}
    elif fmt == "alpaca":
        out = {"instruction": row["question"], "input": row["chunk_text"] if grounded else "", "output": row["answer"]}
    elif fmt == "sharegpt":
        out = {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": row["answer"]}]}
    elif fmt == "dpo":
        out = {"prompt": prompt, "chosen": row["answer"], "rejected": row["original_answer"]}
    else:  # csv, parquet: flat columns
        out = {"question": row["question"], "answer": row["answer"]}
        if grounded:
            out["context"] = row["chunk_text"]
    if metadata:
        out |= {
            "pair_id": row["id"],
            "document_id": row["document_id"],
            "document_title": row["document_title"],
            "chunk_id": row["chunk_id"],
            "run_id": row["run_id"],
            "adapter": row["adapter"],
            "flags": ",".join(row["flags"]),
            "reviewer": row["reviewer"],
            "status": row["status"],
        }
    return out


def flat_columns(*, grounded: bool, metadata: bool) -> list[tuple[str, str]]:
    """The columns of the flat formats (CSV, Parquet) in order, with their Parquet types: fixed by the options, never
    guessed from the rows, so an export whose first rows have no reviewer (pending pairs) still types that column, and
    an export with no rows is still a readable file with its header or schema."""
    columns = [("question", "string"), ("answer", "string")]
    if grounded:
        columns.append(("context", "string"))
    if metadata:
        columns += [
            ("pair_id", "int64"),
            ("document_id", "int64"),
            ("document_title", "string"),
            ("chunk_id", "int64"),
            ("run_id", "int64"),
            ("adapter", "string"),
            ("flags", "string"),
            ("reviewer", "string"),
            ("status", "string"),
        ]
    return columns


def split_of(document_hash: str, *, validation_percent: int, seed: str) -> str:
    """Deterministic by document: every pair of a document lands in the same split, run after run."""
    if validation_percent <= 0:
        return "train"
    bucket = int.from_bytes(hashlib.sha256(f"{seed}:{document_hash}".encode()).digest()[:4], "big") % 100
    return "validation" if bucket < validation_percent else "train"
