"""Exports round-trip through the `datasets` library, hold exactly what reviewers approved, and match their manifest."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
import time

import pytest
from datasets import load_dataset
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.documents.models import SourceDocument
from workbench.exports.formats import neutralize_cell
from workbench.exports.models import Export
from workbench.exports.services import ExportOptions, export_create, export_record, export_run, export_write
from workbench.generation.models import Generation, GenerationRun, PairStatus, QAPair
from workbench.jobs import JobStatus
from workbench.review.services import ReviewInput, pair_claim, pair_review


def reviewed(project, reviewer):
    """6 pairs on two documents: 2 approved, 1 edited (DPO pair), 1 rejected, 2 pending; one answer is a CSV formula."""
    pairs = make_pairs(project, 4, question="질문 {i}?", answer="답 {i}.", with_generation=True)
    pairs += make_pairs(project, 2, question="두 번째 문서 질문 {i}?", answer='=HYPERLINK("http://x") {i}', with_generation=True)
    decisions = ["approve", "edit", "reject", None, "approve", None]
    for pair, decision in zip(pairs, decisions):
        if decision is None:
            continue
        QAPair.objects.filter(pk=pair.pk).update(claimed_by=reviewer, lease_expires_at="2100-01-01T00:00:00Z")
        pair_review(
            pair_id=pair.pk,
            reviewer=reviewer,
            data=ReviewInput(decision, 1, question="고친 질문?", answer="고친 답.", reason="틀림"),
        )
    return pairs


@pytest.mark.parametrize(
    "fmt,loader,columns",
    [
        ("messages", "json", {"messages"}),
        ("alpaca", "json", {"instruction", "input", "output"}),
        ("sharegpt", "json", {"conversations"}),
        ("csv", "csv", {"question", "answer"}),
        ("parquet", "parquet", {"question", "answer"}),
    ],
)
def test_formats_load_with_datasets(project, reviewer, tmp_path, fmt, loader, columns):
    reviewed(project, reviewer)
    manifest = export_write(project=project, fmt=fmt, options=ExportOptions(), out_dir=tmp_path)
    (train,) = manifest["files"]
    ds = load_dataset(loader, data_files=str(tmp_path / train["file"]), split="train")
    assert set(ds.column_names) == columns
    assert ds.num_rows == 3 == manifest["counts"]["total"]
    assert manifest["counts"]["by_status"] == {"approved": 2, "edited": 1}
    texts = json.dumps(ds.to_list(), ensure_ascii=False)
    assert "고친 답." in texts and "답 2." not in texts and "답 3." not in texts  # rejected and pending never appear
    assert hashlib.sha256((tmp_path / train["file"]).read_bytes()).hexdigest() == train["sha256"]


def test_messages_are_what_sft_trainers_read(project, reviewer, tmp_path):

    reviewed(project, reviewer)
    export_write(project=project, fmt="messages", options=ExportOptions(grounded=True), out_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"])
    assert rows[0]["messages"][0]["content"].startswith("대한민국은 민주공화국이다.")  # grounded: chunk, then question
    # A conversational dataset renders through a chat template, as TRL's SFT trainer does.
    from jinja2 import Template

    from workers.tiny import LLAMA3_CHAT_TEMPLATE

    rendered = Template(LLAMA3_CHAT_TEMPLATE).render(
        messages=rows[0]["messages"], bos_token="<|begin_of_text|>", add_generation_prompt=False
    )
    assert rendered.count("<|eot_id|>") == 2 and "assistant<|end_header_id|>" in rendered


def test_dpo_pairs_come_from_reviewer_edits(project, reviewer, tmp_path):
    reviewed(project, reviewer)
    manifest = export_write(project=project, fmt="dpo", options=ExportOptions(), out_dir=tmp_path)
    ds = load_dataset("json", data_files=str(tmp_path / "train.jsonl"), split="train")
    assert ds.num_rows == 1 and set(ds.column_names) == {"prompt", "chosen", "rejected"}
    assert (ds[0]["prompt"], ds[0]["chosen"], ds[0]["rejected"]) == ("고친 질문?", "고친 답.", "답 1.")
    assert manifest["counts"]["by_status"] == {"edited": 1}


def test_csv_formula_payload_arrives_neutralised(project, reviewer, tmp_path):
    reviewed(project, reviewer)
    export_write(project=project, fmt="csv", options=ExportOptions(), out_dir=tmp_path)
    ds = load_dataset("csv", data_files=str(tmp_path / "train.csv"), split="train")
    formula = [a for a in ds["answer"] if "HYPERLINK" in a]
    assert formula == ['\'=HYPERLINK("http://x") 0']
    for payload in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralize_cell(payload).startswith("'")
    assert neutralize_cell("질문") == "질문"


HIDDEN_FORMULAS = [
    " =1+1",
    "  +1",
    "\u3000-1",
    "\xa0@SUM(A1)",
    '\n=HYPERLINK("http://x")',
    "\r\n+1",
    "\n질문",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    ' ＝HYPERLINK("http://x")',
]


def test_csv_hidden_formulas_are_neutralised_and_excel_reads_utf8(project, reviewer, tmp_path):
    for payload in HIDDEN_FORMULAS:
        (pair,) = make_pairs(project, 1, question="질문?", answer=payload)
        QAPair.objects.filter(pk=pair.pk).update(status=PairStatus.APPROVED)
    manifest = export_write(project=project, fmt="csv", options=ExportOptions(), out_dir=tmp_path)
    raw = (tmp_path / "train.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel on Korean Windows opens it as UTF-8, not CP949
    assert hashlib.sha256(raw).hexdigest() == manifest["files"][0]["sha256"]
    with open(tmp_path / "train.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["answer"] for r in rows] == ["'" + p for p in HIDDEN_FORMULAS]
    assert neutralize_cell("질문 = 답") == "질문 = 답" and neutralize_cell(" 질문") == " 질문"
    text = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    assert project.prompt_template.split("{")[0].strip()[:10] in text  # Korean stays readable, not \uXXXX escapes
    assert "\\u" not in text


def test_split_by_document_is_deterministic_and_never_leaks(project, reviewer, tmp_path):
    for _ in range(12):
        for pair in make_pairs(project, 3):
            QAPair.objects.filter(pk=pair.pk).update(status=PairStatus.APPROVED)
    options = ExportOptions(validation_percent=30, metadata=True)
    first = export_write(project=project, fmt="messages", options=options, out_dir=tmp_path / "a")
    second = export_write(project=project, fmt="messages", options=options, out_dir=tmp_path / "b")
    assert [f["sha256"] for f in first["files"]] == [f["sha256"] for f in second["files"]]
    docs = {}
    for split in ("train", "validation"):
        rows = [json.loads(line) for line in (tmp_path / "a" / f"{split}.jsonl").read_text().splitlines()]
        docs[split] = {r["document_id"] for r in rows}
    assert docs["train"] and docs["validation"] and not docs["train"] & docs["validation"]
    assert first["counts"]["by_split"]["train"] + first["counts"]["by_split"]["validation"] == 36


@pytest.mark.django_db(transaction=True)
def test_export_taken_while_reviews_run_matches_its_manifest(tmp_path):
    from tests.factories import make_project, make_user

    owner, reviewer = make_user("owner2"), make_user("rev2")
    project = make_project(admins=[owner], reviewers=[reviewer])
    pairs = make_pairs(project, 3000)
    QAPair.objects.filter(pk__in=[p.pk for p in pairs[:1500]]).update(status=PairStatus.APPROVED)
    stop = threading.Event()

    def keep_reviewing():
        from django.db import connection

        while not stop.is_set():
            pair = pair_claim(project=project, reviewer=reviewer)
            if pair is None:
                break
            pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", pair.version))
        connection.close()

    worker = threading.Thread(target=keep_reviewing)
    worker.start()
    time.sleep(0.2)
    manifest = export_write(project=project, fmt="messages", options=ExportOptions(), out_dir=tmp_path)
    stop.set()
    worker.join()
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(lines) == manifest["counts"]["total"] == manifest["files"][0]["rows"]
    assert manifest["counts"]["total"] >= 1500
    assert QAPair.objects.filter(status=PairStatus.APPROVED).count() > manifest["counts"]["total"]  # reviews went on


def test_dpo_export_counts_only_the_pairs_it_can_write(project, reviewer):
    """Preference pairs come from edited pairs only: the progress bar's total is theirs, not every approved pair's."""
    reviewed(project, reviewer)
    export = export_run(export_id=export_record(project=project, fmt="dpo", options=ExportOptions(), created_by=None).pk)
    assert (export.status, export.rows_total, export.rows_done) == (JobStatus.DONE, 1, 1)


def test_export_command(project, reviewer, tmp_path, capsys):
    reviewed(project, reviewer)
    call_command("export_dataset", "--project", project.slug, "--format", "alpaca", "--out", str(tmp_path), "--grounded")
    assert "train.jsonl: 3 rows" in capsys.readouterr().out
    assert json.loads((tmp_path / "manifest.json").read_text())["options"]["grounded"] is True


def reviewed_in_documents(project, reviewer, *hashes: str) -> None:
    """`reviewed`, its two documents given these content hashes (which decide their split, as does the seed)."""
    for pair, name in zip(reviewed(project, reviewer)[::4], hashes):
        SourceDocument.objects.filter(pk=pair.chunk.document_id).update(content_hash=name)


def start_from_the_page(client, project, owner, *, validation_percent: int):
    client.login(username=owner.username, password=PASSWORD)
    return client.post(
        reverse("exports:start", args=[project.slug]),
        {"format": "messages", "include_edited": "on", "validation_percent": validation_percent},
        follow=True,
    )


def test_export_command_says_what_it_includes_and_its_warnings(project, reviewer, tmp_path, capsys):
    """Rejected pairs only when --statuses names them, said on stderr; the manifest's warnings are printed too."""
    reviewed_in_documents(project, reviewer, "fixed-doc-a", "fixed-doc-b")
    args = ["export_dataset", "--project", project.slug, "--format", "alpaca", "--validation-percent", "1"]
    call_command(*args, "--out", str(tmp_path / "default"))
    out = capsys.readouterr()
    assert "Note:" not in out.err and "Warning: No validation file" in out.err
    call_command(*args, "--statuses", "approved,rejected", "--out", str(tmp_path / "with-rejected"))
    out = capsys.readouterr()
    assert "Note: the export includes rejected pairs, as --statuses asks." in out.err
    manifest = json.loads((tmp_path / "with-rejected" / "manifest.json").read_text())
    assert manifest["counts"]["by_status"]["rejected"] == 1


def test_export_command_never_mixes_in_earlier_files(project, reviewer, tmp_path):
    reviewed(project, reviewer)
    args = ["export_dataset", "--project", project.slug, "--format", "alpaca", "--out"]
    call_command(*args, str(tmp_path / "first"))
    with pytest.raises(CommandError, match="is not empty; give a new or empty folder"):
        call_command(*args, str(tmp_path / "first"))  # a second export there would sit beside the first one's files
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(CommandError, match="is a file; give a folder"):
        call_command(*args, str(tmp_path / "a-file"))
    assert sorted(p.name for p in (tmp_path / "first").iterdir()) == ["manifest.json", "train.jsonl"]


def test_small_export_comes_straight_back(client, project, owner, reviewer):
    reviewed(project, reviewer)
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("exports:start", args=[project.slug]), {"format": "messages", "include_edited": "on", "validation_percent": 0}
    )
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["messages"][0]["role"] == "user"
    export = Export.objects.get(project=project)
    assert export.status == JobStatus.DONE and export.manifest["counts"]["total"] == 3


def test_a_small_export_in_two_files_lists_both_to_download(client, project, owner, reviewer):
    """With a train and a validation file, the page lists both with their links (a download sent one file only)."""
    from workbench.exports.formats import split_of

    seed = ExportOptions().split_seed
    names = [f"doc-{i}" for i in range(100)]
    to_validation = next(n for n in names if split_of(n, validation_percent=50, seed=seed) == "validation")
    to_train = next(n for n in names if split_of(n, validation_percent=50, seed=seed) == "train")
    reviewed_in_documents(project, reviewer, to_validation, to_train)
    response = start_from_the_page(client, project, owner, validation_percent=50)
    export = Export.objects.get(project=project)
    assert sorted(f["file"] for f in export.manifest["files"]) == ["train.jsonl", "validation.jsonl"]
    page = response.content.decode()
    assert response.redirect_chain and f"Export {export.pk} is ready: " in page
    for f in export.manifest["files"]:
        assert reverse("exports:download", args=[project.slug, export.pk, f["file"]]) in page


def test_an_empty_validation_split_is_said_not_hidden(client, project, owner, reviewer):
    """Two documents: a 1% validation share by document gets neither of them (their hashes fixed, as is the seed)."""
    reviewed_in_documents(project, reviewer, "fixed-doc-a", "fixed-doc-b")
    response = start_from_the_page(client, project, owner, validation_percent=1)
    export = Export.objects.get(project=project)
    warning = export.manifest["warnings"][0]
    assert "No validation file" in warning and "2 documents " in warning and "1% validation share" in warning
    page = response.content.decode()
    assert response.redirect_chain and "No validation file" in page and f"Export {export.pk}:" in page
    assert [f["file"] for f in export.manifest["files"]] == ["train.jsonl"]
    # Without a split asked for, nothing to say.
    export_run(export_id=export_record(project=project, fmt="messages", options=ExportOptions(), created_by=owner).pk)
    assert Export.objects.order_by("-pk").first().manifest["warnings"] == []


@pytest.mark.worker
def test_export_task_from_the_page_and_download(client, celery_worker, project, owner, reviewer, settings):
    settings.EXPORT_INLINE_MAX_ROWS = 0  # as for a large export
    reviewed(project, reviewer)
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("exports:start", args=[project.slug]), {"format": "parquet", "include_edited": "on", "validation_percent": 0}
    )
    assert response.status_code == 302
    export = Export.objects.get(project=project)
    deadline = time.monotonic() + 60
    while Export.objects.get(pk=export.pk).status not in (JobStatus.DONE, JobStatus.FAILED) and time.monotonic() < deadline:
        time.sleep(0.2)
    export.refresh_from_db()
    assert export.status == JobStatus.DONE, export.error
    assert export.manifest["created_by"] == owner.username and export.rows_done == 3
    download = client.get(reverse("exports:download", args=[project.slug, export.pk, "train.parquet"]))
    assert download.status_code == 200 and b"".join(download.streaming_content)[:4] == b"PAR1"
    assert client.get(f"/p/{project.slug}/exports/{export.pk}/..%2F..%2Fsettings.py").status_code == 404
    assert client.get(reverse("exports:download", args=[project.slug, export.pk, "validation.parquet"])).status_code == 404


def test_exports_page_title_is_text_and_its_script_loads_once(client, project, owner):
    client.login(username=owner.username, password=PASSWORD)
    body = client.get(reverse("exports:list", args=[project.slug])).content.decode()
    title = re.search(r"<title>(.*?)</title>", body, re.S).group(1)
    assert title == "Exports · Korean news"
    # CSP allows only same-origin script files: one <script src>, no inline script, after the page's content.
    assert re.findall(r"<script[^>]*>", body) == ['<script src="/static/js/export_progress.js" defer>']
    assert body.index("<script") > body.index('id="export-list"')


def test_only_admins_export(client, project, reviewer, outsider):
    """The access rule: a reviewer of the project is refused (403), an outsider does not see it exists (404)."""
    export = export_create(project=project, fmt="messages", options=ExportOptions(), created_by=None)
    for user, code in ((reviewer, 403), (outsider, 404)):
        client.login(username=user.username, password=PASSWORD)
        assert client.get(reverse("exports:list", args=[project.slug])).status_code == code
        assert client.post(reverse("exports:start", args=[project.slug]), {"format": "csv"}).status_code == code
        assert client.get(reverse("exports:status", args=[project.slug, export.pk])).status_code == code
        assert client.get(reverse("exports:download", args=[project.slug, export.pk, "manifest.json"])).status_code == code
    assert not Export.objects.exclude(pk=export.pk).exists()


def test_manifest_says_which_arithmetic_made_each_run(project, reviewer, tmp_path):
    """Samples made with FP8 matmuls (GENERATION_FP8) are not bf16-exact; the manifest lists each run's precisions."""
    reviewed(project, reviewer)
    first, second = GenerationRun.objects.filter(project=project).order_by("id")
    Generation.objects.filter(run=first).update(precision="bfloat16")
    Generation.objects.filter(run=second).update(precision="bfloat16, fp8 prefill")
    Generation.objects.filter(pk=Generation.objects.filter(run=second).values("pk")[:1]).update(
        precision="bfloat16"
    )  # a retry elsewhere
    manifest = export_write(project=project, fmt="messages", options=ExportOptions(), out_dir=tmp_path)
    assert {r["id"]: r["precision"] for r in manifest["runs"]} == {
        first.pk: ["bfloat16"],
        second.pk: ["bfloat16", "bfloat16, fp8 prefill"],
    }


def test_manifest_lists_the_sampling_each_run_used(project, reviewer, tmp_path):
    """Top-k and top-p left to the checkpoint are resolved by the workers; the manifest lists what they used."""
    reviewed(project, reviewer)
    first, second = GenerationRun.objects.filter(project=project).order_by("id")
    used = {"temperature": 1.0, "top_k": 50, "top_p": 0.9, "max_new_tokens": 256}
    Generation.objects.filter(run=first).update(sampling=used)
    manifest = export_write(project=project, fmt="messages", options=ExportOptions(), out_dir=tmp_path)
    assert {r["id"]: r["sampling"] for r in manifest["runs"]} == {first.pk: [used], second.pk: []}
    assert manifest["project_settings"]["top_k"] is None and manifest["project_settings"]["top_p"] is None


@pytest.mark.parametrize("grounded,metadata", [(False, False), (True, False), (False, True), (True, True)])
def test_flat_columns_are_what_the_rows_hold(project, reviewer, grounded, metadata):
    from workbench.exports.formats import build, flat_columns
    from workbench.exports.services import _rows

    reviewed(project, reviewer)
    # Read to the end: the rows come from a server-side cursor that closes when its generator finishes (one left open
    # would be closed by the garbage collector later, inside another test's transaction).
    row = list(_rows(project, ExportOptions(grounded=grounded, metadata=metadata), "csv", batch=10))[0]
    built = build("csv", row, grounded=grounded, metadata=metadata)
    assert list(built) == [name for name, _ in flat_columns(grounded=grounded, metadata=metadata)]


def test_parquet_keeps_one_schema_when_a_column_is_empty_in_the_first_batch(project, reviewer, tmp_path, monkeypatch):
    """Parquet is written in batches; a column that is all null in the first (pending pairs: no reviewer yet) and
    filled in a later one still makes one file, typed from the options rather than guessed from the first batch."""
    import pyarrow.parquet as pq

    from workbench.exports import services

    monkeypatch.setattr(services._Sink, "PARQUET_BATCH", 2)  # 20,000 in use: the same path at a test's size
    pending = make_pairs(project, 3, question="보류 질문 {i}?", answer="보류 답 {i}.", with_generation=True)
    approved = reviewed(project, reviewer)  # 2 approved, 1 edited, 2 more pending, 1 rejected
    options = ExportOptions(metadata=True, statuses=("pending", "approved", "edited"))
    manifest = export_write(project=project, fmt="parquet", options=options, out_dir=tmp_path)
    table = pq.read_table(tmp_path / "train.parquet")
    assert table.num_rows == manifest["counts"]["total"] == 8
    rows = table.to_pylist()
    assert {r["reviewer"] for r in rows if r["status"] == "pending"} == {None}
    assert {r["reviewer"] for r in rows if r["status"] != "pending"} == {reviewer.get_username()}
    assert {r["pair_id"] for r in rows} >= {p.pk for p in pending} | {approved[0].pk}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_export_with_no_rows_is_a_readable_file_with_its_columns(project, tmp_path, fmt):
    import pyarrow.parquet as pq

    manifest = export_write(project=project, fmt=fmt, options=ExportOptions(metadata=True), out_dir=tmp_path)
    (train,) = manifest["files"]
    assert manifest["counts"]["total"] == 0 and train["rows"] == 0
    path = tmp_path / train["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == train["sha256"]
    if fmt == "csv":
        header = next(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        assert header[:2] == ["question", "answer"] and "reviewer" in header
    else:
        table = pq.read_table(path)
        assert table.num_rows == 0 and table.schema.names[:2] == ["question", "answer"]


def test_an_export_that_fails_mid_write_leaves_no_cursor_behind(project, reviewer, tmp_path, monkeypatch, settings):
    """The rows come from a server-side cursor inside the export's transaction. A write that fails part-way (a full
    disk) must close it there: left to the garbage collector, its CLOSE would run later, inside whatever transaction the
    process is in by then, which no longer has that cursor, and abort it."""
    import gc

    from workbench.exports import services

    settings.EXPORT_BATCH_ROWS = 2  # several fetches, so the cursor is still open when the write fails
    reviewed(project, reviewer)
    written = []

    def write(self, record):
        written.append(record)
        if len(written) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(services._Sink, "write", write)
    with pytest.raises(OSError, match="No space left"):
        export_write(project=project, fmt="messages", options=ExportOptions(), out_dir=tmp_path)
    gc.collect()
    # The same connection goes on: a query after the failure runs (it failed with "current transaction is aborted").
    assert QAPair.objects.filter(project=project).count() > 0
    assert Export.objects.filter(project=project).count() == 0


def test_dpo_leaves_out_a_question_only_edit_and_says_which_statuses_it_took(project, reviewer, tmp_path):
    """A pair whose answer stayed the model's (only the question edited) has no preference in it; DPO takes edited
    pairs whatever statuses were asked for, and its manifest says what it took."""
    pairs = make_pairs(project, 2)
    for pair, (question, answer) in zip(pairs, [("고친 질문?", "고친 답."), ("질문만 고쳤나요?", pairs[1].answer)]):
        claimed = pair_claim(project=project, reviewer=reviewer)
        assert claimed.pk == pair.pk
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question=question, answer=answer))
    assert QAPair.objects.filter(status=PairStatus.EDITED).count() == 2
    manifest = export_write(project=project, fmt="dpo", options=ExportOptions(statuses=("approved",)), out_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("고친 답.", pairs[0].answer)]
    assert manifest["options"]["statuses"] == ["edited"] and manifest["counts"]["by_status"] == {"edited": 1}
    assert manifest["counts"]["skipped_same_answer"] == 1
    assert any("only the question was edited" in w for w in manifest["warnings"])
    assert any("the statuses asked for (approved) do not apply" in w for w in manifest["warnings"])
    default = export_write(project=project, fmt="dpo", options=ExportOptions(), out_dir=tmp_path / "default")
    assert not any("do not apply" in w for w in default["warnings"])


def _decide_all(project, reviewer, decisions: list[tuple[str, str | None, str | None]]) -> None:
    for decision, question, answer in decisions:
        pair = pair_claim(project=project, reviewer=reviewer)
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput(decision, 1, question=question, answer=answer))


def _to_train(count: int, percent: int) -> list[str]:
    from workbench.exports.formats import split_of

    names = (f"train-doc-{i}" for i in range(10_000))
    return [n for n in names if split_of(n, validation_percent=percent, seed=ExportOptions().split_seed) == "train"][:count]


def test_dpo_validation_warning_counts_the_documents_of_the_pairs_written(project, reviewer, tmp_path):
    """Four documents hold reviewed pairs, but the DPO file takes the two edited pairs of one: the warning names that
    one document, not every document of the statuses asked for."""
    edited = make_pairs(project, 2)
    approved = [make_pairs(project, 1)[0] for _ in range(3)]
    for pair, name in zip([edited[0], *approved], _to_train(4, 30)):
        SourceDocument.objects.filter(pk=pair.chunk.document_id).update(content_hash=name)
    _decide_all(project, reviewer, [("edit", "고친 질문?", f"고친 답 {i}.") for i in range(2)] + [("approve", None, None)] * 3)
    manifest = export_write(project=project, fmt="dpo", options=ExportOptions(validation_percent=30), out_dir=tmp_path)
    assert manifest["counts"]["total"] == 2 and [f["file"] for f in manifest["files"]] == ["train.jsonl"]
    (warning,) = manifest["warnings"]
    assert warning.startswith("No validation file: none of the 1 document with exported pairs fell into the 30%")


def test_validation_warning_when_every_pair_was_left_out_says_so(project, reviewer, tmp_path):
    (pair,) = make_pairs(project, 1)
    _decide_all(project, reviewer, [("edit", "질문만 고쳤나요?", pair.answer)])  # no preference: left out of DPO
    manifest = export_write(project=project, fmt="dpo", options=ExportOptions(validation_percent=30), out_dir=tmp_path)
    assert manifest["counts"]["total"] == 0 and manifest["counts"]["skipped_same_answer"] == 1
    assert "No validation file: no pair was exported, so there was nothing to split." in manifest["warnings"]
    assert not any("document" in w for w in manifest["warnings"])


def test_an_export_with_nothing_approved_says_so_instead_of_an_empty_download(client, project, owner):
    make_pairs(project, 3)  # pending only
    response = start_from_the_page(client, project, owner, validation_percent=0)
    export = Export.objects.get(project=project)
    page = response.content.decode()
    assert response.redirect_chain and f"Export {export.pk} has no rows" in page and "approved or edited" in page
    assert export.manifest["counts"]["total"] == 0
