"""`manage.py check_outputs`: the exact offline contract, without a database or any server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.quality.card import article, outputs

SOURCE_B = "김치는 배추나 무 같은 채소를 소금에 절인 뒤 양념으로 버무려 발효시킨 한국의 전통 음식이다."


def run(tmp_path, lines, *args, raw=None, raw_bytes=None):
    path = tmp_path / "in.jsonl"
    if raw_bytes is not None:
        path.write_bytes(raw_bytes)
    else:
        path.write_text(
            raw if raw is not None else "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n",
            encoding="utf-8",
        )
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL"}}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"  # no database: the command must not touch one
    env["WORKBENCH_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "manage.py", "check_outputs", str(path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_contract_order_ids_flags_and_scores(tmp_path):
    src = article()
    lines = [
        {"id": 1, "source": src, "output": outputs()[0], "finish_reason": "stop"},
        {"id": "two", "source": src, "output": outputs()[1], "finish_reason": "length", "title": "총선"},
        {"id": {"doc": 3}, "source": src, "output": outputs()[4]},
        {
            "id": None,
            "source": SOURCE_B,
            "output": outputs()[4].replace("머물렀을까요?", "머물렀을까요 ??"),
            "finish_reason": None,
        },
        {"id": [5], "source": SOURCE_B, "output": "[[Q]] 김치는 무엇인가요?\n[[A]] 한국의 전통 음식입니다."},
    ]
    result = run(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [1, "two", {"doc": 3}, None, [5]]
    for row in rows:
        assert set(row) == {"id", "question", "answer", "flags", "scores"}
        assert row["flags"] == sorted(row["flags"])
        assert set(row["flags"]) <= {"malformed", "truncated", "echo", "duplicate", "language", "repetition", "unsupported"}
        assert all(isinstance(v, (int, float)) for v in row["scores"].values())
    assert rows[0]["flags"] == [] and rows[0]["question"] == "프랑스 총선 결선 결과에 대해 간단히 설명해주세요."
    assert rows[1]["flags"] == ["echo", "malformed", "truncated"] and rows[1]["answer"] is None
    assert rows[2]["flags"] == []
    # A near-duplicate of an earlier line of another source: compared across the file. Its answer speaks of the
    # election, not of the kimchi source it is paired with here.
    assert rows[3]["flags"] == ["duplicate", "unsupported"] and rows[3]["scores"]["duplicate"] == 1.0
    assert rows[3]["scores"]["unsupported"] > 0 and rows[0]["scores"]["unsupported"] == 0
    assert rows[4]["flags"] == []


def test_duplicate_within_the_same_source(tmp_path):
    lines = [
        {"id": 1, "source": SOURCE_B, "output": "[[Q]] 김치는 어떻게 만드나요?\n[[A]] 채소를 절여 양념으로 버무립니다."},
        {"id": 2, "source": SOURCE_B, "output": "[[Q]] 김치는 어떻게 만드나요\n[[A]] 소금에 절인 채소를 발효시킵니다."},
    ]
    rows = [json.loads(line) for line in run(tmp_path, lines).stdout.splitlines()]
    assert rows[0]["flags"] == [] and rows[1]["flags"] == ["duplicate"]


def test_unsupported_flag_and_score(tmp_path):
    source = "대통령의 임기는 5년으로 하며, 중임할 수 없다. 대통령은 1988년 2월 25일 취임하였다."
    lines = [
        {
            "id": 1,
            "source": source,
            "output": "[[Q]] 대통령의 임기는 몇 년인가요?\n[[A]] 대통령의 임기는 5년이며 중임할 수 없습니다.",
            "finish_reason": "stop",
        },
        {
            "id": 2,
            "source": source,
            "output": "[[Q]] 대통령은 언제 취임했나요?\n[[A]] 1988년 3월 25일에 취임하였습니다.",
            "finish_reason": "stop",
        },
    ]
    rows = [json.loads(line) for line in run(tmp_path, lines).stdout.splitlines()]
    assert rows[0]["flags"] == [] and rows[0]["scores"]["unsupported"] == 0
    assert rows[1]["flags"] == ["unsupported"] and 0 < rows[1]["scores"]["unsupported"] <= 1


def test_out_file(tmp_path):
    result = run(
        tmp_path, [{"id": 1, "source": SOURCE_B, "output": "[[Q]] 무엇?\n[[A]] 김치."}], "--out", str(tmp_path / "out.jsonl")
    )
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads((tmp_path / "out.jsonl").read_text())["id"] == 1


def test_malformed_input_line_stops_with_its_number(tmp_path):
    good = json.dumps({"id": 1, "source": SOURCE_B, "output": "[[Q]] 무엇?\n[[A]] 김치."}, ensure_ascii=False)
    for bad, message in [
        ("{not json", "line 2: invalid JSON"),
        (json.dumps({"id": 1, "output": "x"}), "line 2: missing field 'source'"),
        (json.dumps({"id": 1, "source": "x", "output": 3}), "line 2: 'output' must be a string"),
        (json.dumps({"id": 1, "source": "x", "output": "y", "finish_reason": "eos"}), "line 2: finish_reason must be"),
        (json.dumps([1, 2]), "line 2: expected a JSON object"),
    ]:
        result = run(tmp_path, None, raw=f"{good}\n{bad}\n")
        assert result.returncode != 0
        assert message in result.stderr
        assert result.stdout == ""  # nothing written before the whole file was read


def test_hostile_lines_stop_with_their_number_and_nothing_written(tmp_path):
    """Bytes that are not UTF-8, JSON that Python reads but cannot write back (a lone surrogate, NaN), nesting and
    numbers past Python's limits, a list where a string belongs: each stops the command with its line, before anything
    is written, never with a traceback."""
    good = json.dumps({"id": 1, "source": SOURCE_B, "output": "[[Q]] 무엇?\n[[A]] 김치."}, ensure_ascii=False).encode()
    out = tmp_path / "out.jsonl"
    for bad, message in [
        (b'{"id": 2, "source": "\xff\xfe", "output": "x"}', "line 2: not UTF-8 (byte 0xff at column 22)"),
        (b'{"id": 2, "source": "x", "output": "y", "finish_reason": []}', "line 2: finish_reason must be"),
        (b'{"id": 2, "source": "x", "output": "y", "finish_reason": {}}', "line 2: finish_reason must be"),
        (b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b', "source": "x", "output": "y"}', "line 2: invalid JSON"),
        (b'{"id": ' + b"7" * 5000 + b', "source": "x", "output": "y"}', "line 2: invalid JSON"),
        (b'{"id": NaN, "source": "x", "output": "y"}', "line 2: invalid JSON (NaN is not JSON)"),
        (b'{"id": 1e999, "source": "x", "output": "y"}', "line 2: invalid JSON (the number 1e999 is too large)"),
        (b'{"id": 2, "source": "x", "output": "[[Q]] \\ud800?\\n[[A]] y."}', "line 2: holds text that is not Unicode"),
    ]:
        result = run(tmp_path, None, "--out", str(out), raw_bytes=good + b"\n" + bad + b"\n")
        assert result.returncode != 0 and message in result.stderr, (bad[:60], result.stderr[-500:])
        assert "Traceback" not in result.stderr and not out.exists()


def test_a_byte_order_mark_is_read_and_an_unwritable_out_is_said(tmp_path):
    line = json.dumps({"id": 1, "source": SOURCE_B, "output": "[[Q]] 무엇?\n[[A]] 김치."}, ensure_ascii=False).encode()
    result = run(tmp_path, None, raw_bytes=b"\xef\xbb\xbf" + line + b"\n")
    assert result.returncode == 0 and json.loads(result.stdout)["id"] == 1
    result = run(tmp_path, None, "--out", str(tmp_path), raw_bytes=line + b"\n")
    assert result.returncode != 0 and f"Cannot write {tmp_path}" in result.stderr and "Traceback" not in result.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`manage.py check_outputs big.jsonl | head -1`: the closed pipe ends the command without a traceback."""
    lines = [
        json.dumps(
            {"id": i, "source": "대한민국은 민주공화국이다.", "output": f"[[Q]] 질문 {i}?\n[[A]] 대한민국은 민주공화국이다."}
        )
        for i in range(3000)
    ]
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    command = subprocess.Popen(
        [sys.executable, "manage.py", "check_outputs", str(path)],
        cwd=ROOT,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "workbench.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = command.stdout.readline()
    command.stdout.close()  # what `head -1` does after its line
    stderr = command.stderr.read().decode()
    command.wait(timeout=300)
    assert json.loads(first)["id"] == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr[-2000:]
