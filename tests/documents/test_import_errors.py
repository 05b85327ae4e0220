"""Bad input gets a clear message naming the file and where; nothing from a bad file is written."""

from __future__ import annotations

import pytest

from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.importers import Limits
from workbench.documents.models import Chunk, SourceDocument
from workbench.documents.services import documents_import


def one(project, name, raw, limits=None):
    report = documents_import(project=project, files=[(name, raw)], limits=limits)
    (file_report,) = report.files
    return file_report


@pytest.mark.parametrize(
    "name,raw,message,locator",
    [
        ("empty.txt", b"", "the file is empty", ""),
        ("blank.md", b"  \n\n \t", "the file is empty", ""),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "the file is binary", ""),
        ("run.exe", b"MZ\x90\x00", "unsupported file type '.exe'", ""),
        ("bad.jsonl", files.jsonl({"text": KO}, '{"text": "깨진 줄', {"text": KO2}), "invalid JSON", "line 2"),
        ("notext.jsonl", files.jsonl({"text": KO}, {"body": KO2}), "no 'text' field (fields: body)", "line 2"),
        ("number.jsonl", files.jsonl({"text": 3}), "the 'text' field must be a string", "line 1"),
        ("emptytext.jsonl", files.jsonl({"text": "  "}), "the 'text' field is empty", "line 1"),
        ("array.jsonl", files.jsonl("[1, 2]"), "expected a JSON object, got list", "line 1"),
        ("sheet.csv", f"id,body\n1,{KO}\n".encode(), "no 'text' column (columns: id, body)", "row 1"),
        ("ragged.csv", f'id,text\n1,"{KO}"\n2,{KO2},extra\n'.encode(), "more cells than header columns", "row 3"),
        ("broken.json", b'{"text": ', "invalid JSON", "line 1"),
        ("scan.pdf", files.pdf_without_text(), "the PDF has no text layer", ""),
        ("fake.pdf", b"%PDF-1.4 not really", "the PDF could not be read", ""),
        ("fake.docx", b"PK\x03\x04 not a docx", "the DOCX could not be read", ""),
        ("fake.zip", b"PK\x03\x04 nope", "not a valid ZIP file", ""),
        (
            "traversal.zip",
            files.zip_of({"../../etc/passwd.txt": KO.encode()}),
            "'..' paths are not allowed",
            "../../etc/passwd.txt",
        ),
        ("absolute.zip", files.zip_of({"/etc/a.txt": KO.encode()}), "absolute or '..' paths", "/etc/a.txt"),
        (
            "nested.zip",
            files.zip_of({"inner.zip": files.zip_of({"a.txt": KO.encode()})}),
            "archives inside archives",
            "inner.zip",
        ),
        ("badmember.zip", files.zip_of({"a.txt": KO.encode(), "b.jsonl": b'{"text": 1}'}), "must be a string", "b.jsonl line 1"),
        ("nothing.zip", files.zip_of({"__MACOSX/._x.txt": b"x"}), "no importable files", ""),
    ],
)
def test_bad_file_is_refused_with_reason_and_writes_nothing(project, name, raw, message, locator):
    report = one(project, name, raw)
    assert report.status == "failed"
    assert message in report.error
    assert report.locator == locator
    assert not SourceDocument.objects.exists() and not Chunk.objects.exists()


def test_zip_bomb_is_stopped_while_reading(project):
    bomb = files.zip_of({"a.txt": ("가" * 4_000_000).encode()})  # 12 MB that compresses to a few KB
    assert len(bomb) < 100_000
    report = one(project, "bomb.zip", bomb, limits=Limits(max_archive_bytes=1_000_000))
    assert report.status == "failed" and "expands beyond the size limit" in report.error


def test_oversize_file(project):
    report = one(project, "big.txt", KO.encode() * 100, limits=Limits(max_file_bytes=1000))
    assert report.status == "failed" and "over the limit of 1,000 bytes" in report.error


def test_too_many_archive_members(project):
    archive = files.zip_of({f"{i}.txt": f"{KO} {i}".encode() for i in range(5)})
    report = one(project, "many.zip", archive, limits=Limits(max_archive_members=3))
    assert report.status == "failed" and "5 files, over the limit of 3" in report.error


def test_document_count_limit_across_a_batch(project):
    limits = Limits(max_documents=3)
    report = documents_import(
        project=project,
        files=[
            ("a.jsonl", files.jsonl({"text": "하나"}, {"text": "둘"})),
            ("b.jsonl", files.jsonl({"text": "셋"}, {"text": "넷"})),
        ],
        limits=limits,
    )
    assert [f.status for f in report.files] == ["imported", "failed"]
    assert "limit of 3 documents" in report.files[1].error
    assert SourceDocument.objects.count() == 2


def test_one_bad_record_fails_its_file_only(project):
    report = documents_import(
        project=project,
        files=[
            ("good.txt", KO.encode()),
            ("mixed.jsonl", files.jsonl({"text": "좋은 기록"}, {"text": "또 좋은 기록"}, "{oops")),
            ("good2.txt", KO2.encode()),
        ],
    )
    assert [f.status for f in report.files] == ["imported", "failed", "imported"]
    assert report.files[1].locator == "line 3"
    assert set(SourceDocument.objects.values_list("text", flat=True)) == {KO, KO2}


def test_an_empty_file_among_others_fails_alone_on_the_page_and_in_the_api(client, owner, project):
    """A zero-byte file is that file's failure in the report; the other files of the upload are imported."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from tests.conftest import PASSWORD
    from tests.review.test_api import token_client
    from workbench.documents.models import SourceDocument

    def files(tag):
        return [
            SimpleUploadedFile(f"좋은{tag}.txt", f"대통령의 임기는 5년으로 한다. {tag}".encode()),
            SimpleUploadedFile("빈.txt", b""),
        ]

    client.login(username=owner.username, password=PASSWORD)
    page = client.post(
        reverse("documents:upload", args=[project.slug]),
        {"files": files("가"), "text_field": "text", "title_field": "title", "id_field": "id"},
        follow=True,
    )
    assert page.status_code == 200 and "the file is empty" in page.content.decode()
    assert "Choose at least one file" not in page.content.decode()
    api = token_client(owner).post(f"/api/projects/{project.slug}/documents", {"files": files("나")}, format="multipart")
    assert [(f["name"], f["status"]) for f in api.json()["files"]] == [("좋은나.txt", "imported"), ("빈.txt", "failed")]
    assert api.json()["files"][1]["error"] == "the file is empty"
    assert sorted(SourceDocument.objects.filter(project=project).values_list("origin_filename", flat=True)) == [
        "좋은가.txt",
        "좋은나.txt",
    ]
