"""HWP 5.0 and HWPX documents through the real import path: a file Hangul saved, packages built as Hangul writes them,
paragraphs and tables in reading order, and locked files refused with a message that says what to do."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.conftest import PASSWORD
from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.models import Chunk, SourceDocument
from workbench.documents.services import documents_import

TABLE = [["현행", "개정안"], ["만 6세 이하의 초등학교 취학 전 자녀", "만 8세 이하의 자녀"], ["부칙", "공포한 날부터 시행"]]


def api_upload(client, project, *named):
    client.login(username="owner", password=PASSWORD)
    response = client.post(
        f"/api/projects/{project.slug}/documents", {"files": [SimpleUploadedFile(name, raw) for name, raw in named]}
    )
    return response.status_code, response.json()


def test_hwp_saved_by_hangul_imports_paragraphs_then_table_rows(client, project):
    status, report = api_upload(client, project, ("원본.hwp", files.hwp_fixture(files.HWP_SOURCE)))
    assert status == 200, report
    (entry,) = report["files"]
    assert entry["status"] == "imported" and entry["documents_created"] == 1, entry
    doc = SourceDocument.objects.get(project=project)
    assert doc.title == "원본"
    assert doc.text == "첫 문단...\n\n이것은 원본 HWP 파일의 내용입니다.\n\nABC | 123"
    assert "".join(Chunk.objects.filter(document=doc).order_by("index").values_list("text", flat=True)).startswith("첫 문단")


def test_hwpx_paragraphs_and_table_rows_in_reading_order(project):
    raw = files.hwpx(KO, TABLE, KO2, "<제1조> 이 법은 & 시행한다.")
    report = documents_import(project=project, files=[("개정안.hwpx", raw)])
    assert report.ok, report.as_dict()
    assert SourceDocument.objects.get(project=project).text == "\n\n".join(
        [
            KO,
            "현행 | 개정안\n만 6세 이하의 초등학교 취학 전 자녀 | 만 8세 이하의 자녀\n부칙 | 공포한 날부터 시행",
            KO2,
            "<제1조> 이 법은 & 시행한다.",
        ]
    )


def test_hwpx_of_many_sections_keeps_their_order(project):
    """Hangul starts a section at every page-layout change: section10.xml follows section9.xml, not section1.xml."""
    paragraphs = [f"제{i}절 {KO}" for i in range(12)]
    report = documents_import(project=project, files=[("절.hwpx", files.hwpx(*paragraphs, sections=12))])
    assert report.ok, report.as_dict()
    assert SourceDocument.objects.get(project=project).text.split("\n\n") == paragraphs


def test_hwp_and_hwpx_in_a_zip_and_through_the_command(project, tmp_path):
    archive = files.zip_of({"안건/원본.hwp": files.hwp_fixture(files.HWP_SOURCE), "안건/개정안.hwpx": files.hwpx(KO2, TABLE)})
    (tmp_path / "bills.zip").write_bytes(archive)
    call_command("import_documents", "--project", project.slug, str(tmp_path / "bills.zip"))
    texts = dict(SourceDocument.objects.filter(project=project).values_list("origin_filename", "text"))
    assert texts["안건/원본.hwp"].endswith("ABC | 123")
    assert texts["안건/개정안.hwpx"].startswith(KO2 + "\n\n현행 | 개정안\n")


def test_a_file_is_read_by_its_content_not_its_extension(project):
    """Hangul's "save as" keeps whatever name the user typed: an HWPX named .hwp is still read."""
    report = documents_import(project=project, files=[("renamed.hwp", files.hwpx(KO))])
    assert report.ok, report.as_dict()
    assert SourceDocument.objects.get(project=project).text == KO


@pytest.mark.parametrize(
    "name,raw,message",
    [
        (
            "locked.hwp",
            files.hwp_with_password(),
            "the HWP is password-protected; open it in Hangul and save it without a password first",
        ),
        (
            "배포용.hwp",
            files.hwp_fixture(files.HWP_DISTRIBUTION),
            "the HWP is a distribution document (배포용), locked by its author",
        ),
        ("locked.hwpx", files.hwpx(KO, encrypted=True), "the HWPX is password-protected or a distribution document (배포용)"),
        ("old.hwp", b"HWP Document File V3.00 \x1a\x01\x02\x03\x04\x05" + b"\x00" * 200, "an HWP 3.0 (or older) document"),
        ("text.hwp", KO.encode(), "the file is not an HWP 5.0 or HWPX document"),
    ],
    ids=["password", "distribution", "hwpx-encrypted", "hwp3", "not-hwp"],
)
def test_locked_or_foreign_hwp_is_refused_with_what_to_do(client, project, name, raw, message):
    status, report = api_upload(client, project, (name, raw), ("ok.txt", KO2.encode()))
    assert status == 400, report
    locked, ok = report["files"]
    assert locked["status"] == "failed" and message in locked["error"], locked
    assert ok["status"] == "imported"
    assert list(SourceDocument.objects.values_list("origin_filename", flat=True)) == ["ok.txt"]
