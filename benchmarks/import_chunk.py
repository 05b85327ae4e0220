"""Import and chunk a ~100 MB Korean corpus into PostgreSQL; print MB/s, documents/s, chunks/s and memory.

The corpus is synthesised from the shared Korean documents (constitution, bills, KLUE premises): documents of 1-40 KB
made of shuffled paragraphs, each unique, written as JSONL files of ~10 MB and .txt files. The naive baseline
(one INSERT per document and per chunk through `Model.save()`) runs on the first file only, in the same run.
Then the ten bills are imported as printed PDFs (headers, page numbers, a table) and as HWPX packages, and the HWP
fixture many times over, to time the binary extractors (needs the test extra: reportlab, hwpkit).

    python benchmarks/import_chunk.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _django import SHARED_DATA, peak_rss_mb, rss_mb, setup


def paragraphs() -> list[str]:
    from workbench.documents.text import normalize_text

    paras = []
    for path in [SHARED_DATA / "constitution.txt", *sorted((SHARED_DATA / "kobill").glob("*.txt"))]:
        paras += [p for p in normalize_text(path.read_text(encoding="utf-8")).split("\n\n") if len(p) > 20]
    klue = json.loads((SHARED_DATA / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    paras += sorted({r["premise"] for r in klue})
    return paras


def synthesise(folder: Path, megabytes: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    paras = paragraphs()
    target = megabytes * 1024 * 1024
    written, n, files = 0, 0, []
    while written < target:
        path = folder / f"corpus-{len(files):03d}.jsonl"
        size = 0
        with path.open("w", encoding="utf-8") as f:
            while size < 10 * 1024 * 1024 and written + size < target:
                body = "\n\n".join(rng.choice(paras) for _ in range(rng.randint(2, 60)))
                line = json.dumps({"id": n, "title": f"문서 {n}", "text": f"문서 번호 {n}\n\n{body}"}, ensure_ascii=False) + "\n"
                f.write(line)
                size += len(line.encode())
                n += 1
        written += size
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    setup()
    from workbench.documents.chunking import chunk_text
    from workbench.documents.importers import parse_file
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.documents.services import chunk_settings_for, content_hash, documents_import
    from workbench.projects.services import project_create

    with tempfile.TemporaryDirectory() as tmp:
        files = synthesise(Path(tmp), args.mb)
        total_bytes = sum(p.stat().st_size for p in files)
        print(f"corpus: {total_bytes / 1e6:.1f} MB in {len(files)} files")

        # Naive baseline on the first file: one INSERT per document and per chunk.
        naive = project_create(slug="naive", name="naive")
        settings = chunk_settings_for(naive)
        raw = files[0].read_bytes()
        t0 = time.perf_counter()
        docs = parse_file(files[0].name, raw)
        for d in docs:
            doc = SourceDocument(project=naive, content_hash=content_hash(d.text), text=d.text, title=d.title)
            doc.save()
            for i, s in enumerate(chunk_text(d.text, settings)):
                Chunk(
                    document=doc,
                    chunking_key=settings.key,
                    index=i,
                    text=d.text[s.start : s.end],
                    start=s.start,
                    end=s.end,
                    size=s.size,
                ).save()
        naive_s = time.perf_counter() - t0
        naive_mb_s = len(raw) / 1e6 / naive_s

        project = project_create(slug="bench", name="bench")
        start_rss = rss_mb()
        rss_after = []
        t0 = time.perf_counter()
        for path in files:
            report = documents_import(project=project, files=[(path.name, path.read_bytes())])
            assert report.ok, report.as_dict()
            rss_after.append(rss_mb())
        elapsed = time.perf_counter() - t0
        n_docs = SourceDocument.objects.filter(project=project).count()
        n_chunks = Chunk.objects.filter(document__project=project).count()

        binary = binary_formats(project_create(slug="bench-binary", name="bench-binary"))

    quarter = max(1, len(rss_after) // 4)
    print(f"naive baseline (first file, {len(raw) / 1e6:.1f} MB): {naive_s:.1f} s, {naive_mb_s:.2f} MB/s")
    print(f"workbench import: {elapsed:.1f} s for {total_bytes / 1e6:.1f} MB")
    print(f"  {total_bytes / 1e6 / elapsed:.2f} MB/s   {n_docs / elapsed:,.0f} documents/s   {n_chunks / elapsed:,.0f} chunks/s")
    print(f"  {n_docs:,} documents, {n_chunks:,} chunks")
    print(f"  speed-up over naive: {total_bytes / 1e6 / elapsed / naive_mb_s:.1f}x")
    print(
        f"  RSS before: {start_rss:.0f} MB; after 1/4, 1/2, all files: "
        f"{rss_after[quarter - 1]:.0f}, {rss_after[len(rss_after) // 2 - 1]:.0f}, {rss_after[-1]:.0f} MB; peak {peak_rss_mb():.0f} MB"
    )
    for line in binary:
        print(line)


def binary_formats(project) -> list[str]:
    """Import the bills as PDF and HWPX, and the HWP fixture, through the same service; one line of figures each."""
    from tests.documents import files
    from tests.documents.test_pdf_reading import TABLE, bill_paragraphs
    from workbench.documents.services import documents_import

    bills = sorted((SHARED_DATA / "kobill").glob("*.txt"))
    hwp = files.hwp_fixture(files.HWP_SOURCE)
    batches = {
        "PDF bills": [
            (f"{b.stem}.pdf", files.pdf_bill(bill_paragraphs(b), header=f"의안 제{b.stem}호", table=TABLE)) for b in bills
        ],
        "HWPX bills": [(f"{b.stem}.hwpx", files.hwpx(*bill_paragraphs(b), [list(r) for r in TABLE])) for b in bills],
        # every copy is read whole; only the first adds a document (the others have its content hash)
        "HWP files": [(f"copy-{i}.hwp", hwp) for i in range(50)],
    }
    lines = []
    for label, named in batches.items():
        size = sum(len(raw) for _, raw in named)
        t0 = time.perf_counter()
        report = documents_import(project=project, files=named)
        elapsed = time.perf_counter() - t0
        assert report.ok, report.as_dict()
        lines.append(
            f"{label}: {len(named)} files, {size / 1e6:.2f} MB in {elapsed:.2f} s: {len(named) / elapsed:.1f} files/s, "
            f"{size / 1e6 / elapsed:.2f} MB/s, {report.documents_created} documents"
        )
    return lines


if __name__ == "__main__":
    main()
