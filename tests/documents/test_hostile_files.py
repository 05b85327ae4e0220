"""Hostile files through the real upload view: a clear per-file error, never a 500, nothing of a refused file written."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import PASSWORD, ROOT
from tests.documents import files
from tests.documents.files import KO, KO2
from tests.review.test_api import token_client
from workbench.documents.models import Chunk, SourceDocument

DEEP = 100_000  # past the interpreter's recursion limit

HOSTILE = [
    # (name, bytes, the message the report gives, the locator)
    ("encrypted.zip", files.zip_encrypted(), "the file is encrypted", "a.txt"),
    ("bad-crc.zip", files.zip_bad_crc(), "damaged in the archive (BadZipFile: Bad CRC-32", "a.txt"),
    ("bad-deflate.zip", files.zip_corrupt_deflate(), "damaged in the archive (error:", "a.txt"),
    ("method-99.zip", files.zip_unknown_method(), "compressed with an unsupported method (99)", "a.txt"),
    ("long-path.zip", files.zip_of({"d/" * 260 + "a.txt": KO.encode()}), "is 525 characters long, over the limit of 500", None),
    ("bomb.zip", files.zip_bomb(200 * 1024**2), "expands to 209,715,200 bytes, over the limit", "bomb.txt"),
    ("bomb.docx", files.docx_bomb(50 * 1024**2), "times, to 52,", "word/document.xml"),
    ("nul-raw.jsonl", b'{"text": "' + "가".encode() * 3000 + b'\x00"}', "invalid JSON (Invalid control character", "line 1"),
    ("nan.jsonl", files.jsonl('{"text": "가나다", "score": NaN}'), "invalid JSON (NaN is not a JSON number)", "line 1"),
    ("infinity.json", b'[{"text": "\xea\xb0\x80", "score": -Infinity}]', "-Infinity is not a JSON number", ""),
    (
        "overflow.jsonl",
        files.jsonl('{"text": "가나다", "score": 1e999}'),
        "invalid JSON (the number 1e999 is too large)",
        "line 1",
    ),
    ("surrogate.jsonl", files.jsonl('{"text": "가\\ud800나"}'), "lone surrogate (\\ud800)", "line 1"),
    ("surrogate-meta.jsonl", files.jsonl('{"text": "가나", "note": "\\udfff"}'), "lone surrogate (\\udfff)", "line 1"),
    ("deep.jsonl", ('{"text": "가", "m": ' + "[" * DEEP + "]" * DEEP + "}").encode(), "nested too deeply", "line 1"),
    ("deep-meta.json", ('{"text": "가", "m": ' + "[" * 500 + "]" * 500 + "}").encode(), "nested more than 64 levels", "record 1"),
    (
        "long-id.jsonl",
        files.jsonl({"text": "가나다", "id": "x" * 301}),
        "the 'id' field is 301 characters long, over the limit of 300",
        "line 1",
    ),
    (
        "object-id.jsonl",
        files.jsonl({"text": "가나다", "id": {"a": 1}}),
        "the 'id' field must be a string or an integer, got dict",
        "line 1",
    ),
    ("bool-id.json", b'[{"text": "\xea\xb0\x80", "id": true}]', "must be a string or an integer, got bool", "record 1"),
    ("digits.jsonl", ('{"text": "가", "n": ' + "7" * 5000 + "}").encode(), "a number has too many digits", "line 1"),
    ("inflate-limit.pdf", files.pdf_deflate_bomb(), "the PDF could not be read (LimitReachedError", ""),
    ("page-cycle.pdf", files.pdf_pages_cycle(), "the PDF could not be read", ""),
    ("truncated.pdf", files.pdf(KO)[:700], "the PDF could not be read", ""),
    ("no-document.docx", files.docx_without_document(), "the DOCX could not be read (KeyError)", ""),
    ("broken-xml.docx", files.docx_broken_xml(), "the DOCX could not be read (XMLSyntaxError)", ""),
    ("bomb.hwp", files.hwp_bomb(), "the HWP expands beyond the size limit (a zip bomb?)", "BodyText/Section0"),
    ("ratio-bomb.hwp", files.hwp_bomb(50 * 1024**2), "the HWP expands 1,028 times, to 52,428,800 bytes", "BodyText/Section0"),
    ("bomb.hwpx", files.hwpx_bomb(50 * 1024**2), "the HWPX expands 1,022 times, to 52,", "Contents/section0.xml"),
    ("truncated.hwp", files.hwp_fixture(files.HWP_SOURCE)[:5000], "not an HWP document (no HWP signature in its FileHeader)", ""),
    ("broken-xml.hwpx", files.hwpx(section_xml=b"<hs:sec><hp:p>"), "the section is not well-formed XML", "Contents/section0.xml"),
    ("not-a-package.hwpx", b"PK\x03\x04" + b"\x00" * 100, "the HWPX could not be read (not a ZIP package)", ""),
]


def login(client, user):
    client.login(username=user.username, password=PASSWORD)


def upload(client, project, *named):
    return client.post(
        reverse("documents:upload", args=[project.slug]),
        {
            "files": [SimpleUploadedFile(n, raw) for n, raw in named],
            "text_field": "text",
            "title_field": "title",
            "id_field": "id",
        },
        HTTP_ACCEPT="application/json",
    )


@pytest.mark.parametrize("name,raw,message,locator", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_file_is_refused_with_a_reason(client, owner, project, name, raw, message, locator):
    login(client, owner)
    response = upload(client, project, (name, raw))
    assert response.status_code == 400
    (report,) = response.json()["files"]
    assert report["status"] == "failed" and message in report["error"], report
    if locator is not None:
        assert report["locator"] == locator
    assert not SourceDocument.objects.exists() and not Chunk.objects.exists()


def test_hostile_files_among_good_ones_are_reported_one_by_one(client, owner, project):
    login(client, owner)
    good = [("first.txt", KO.encode()), ("second.jsonl", files.jsonl({"text": KO2, "id": 7}))]
    named = [good[0], *[(name, raw) for name, raw, _, _ in HOSTILE], good[1]]
    response = upload(client, project, *named)
    assert response.status_code == 400
    reports = response.json()["files"]
    assert [r["name"] for r in reports] == [n for n, _ in named]
    assert [r["status"] for r in reports] == ["imported"] + ["failed"] * len(HOSTILE) + ["imported"]
    assert sorted(SourceDocument.objects.values_list("origin_filename", flat=True)) == ["first.txt", "second.jsonl"]
    assert not SourceDocument.objects.filter(chunks__isnull=True).exists()


def test_values_postgresql_cannot_store_are_cleaned(client, owner, project):
    """NUL characters (escaped in JSON, or in a CSV) are dropped from the text, title, id and metadata."""
    login(client, owner)
    record = '{"text": "가\\u0000나다", "title": "제\\u0000목", "id": "a\\u0000b", "tags": ["x\\u0000y"], "\\u0000k": 1}'
    response = upload(client, project, ("nul.jsonl", files.jsonl(record)))
    assert response.status_code == 200, response.json()
    doc = SourceDocument.objects.get()
    assert (doc.text, doc.title, doc.external_id, doc.metadata) == ("가나다", "제목", "ab", {"tags": ["xy"], "k": 1})


def test_a_title_longer_than_its_column_is_shown_cut_and_kept_whole(client, owner, project):
    """A record's title over 500 characters shows its start with an ellipsis; the whole title stays with the record's
    metadata (a title of exactly 500 is kept as it is). A Markdown heading that long is cut the same way (the text
    keeps it whole)."""
    login(client, owner)
    long_title, exact = "긴 제목 " * 120, "가" * 500
    records = [
        {"text": "첫째 문서의 본문입니다.", "title": long_title, "id": "long"},
        {"text": "둘째 문서의 본문입니다.", "title": exact, "id": "exact"},
    ]
    heading = "# " + "머리말 " * 200 + "\n\n본문입니다."
    response = upload(
        client,
        project,
        ("titles.jsonl", files.jsonl(*(json.dumps(r, ensure_ascii=False) for r in records))),
        ("heading.md", heading.encode()),
    )
    assert response.status_code == 200, response.json()
    cut = SourceDocument.objects.get(external_id="long")
    assert len(cut.title) == 500 and cut.title.endswith("…") and long_title.strip().startswith(cut.title[:-1])
    assert cut.metadata == {"title": long_title.strip()}
    whole = SourceDocument.objects.get(external_id="exact")
    assert (whole.title, whole.metadata) == (exact, {})
    md = SourceDocument.objects.get(origin_filename="heading.md")
    assert len(md.title) == 500 and md.title.endswith("…") and md.text.startswith("# " + md.title[:-1])


def test_csv_cell_longer_than_the_csv_modules_default_limit(client, owner, project):
    """A document's text may fill a CSV cell past csv.field_size_limit()'s default of 131,072 characters."""
    login(client, owner)
    long_text = " ".join([KO] * 2600)  # about 140,000 characters of prose on one line
    assert len(long_text) > 131_072
    response = upload(client, project, ("long.csv", f'id,text\n1,"{long_text}"\n'.encode()))
    assert response.status_code == 200, response.json()
    assert SourceDocument.objects.get().text == long_text.strip()


def test_over_long_or_unstorable_name_is_refused(project):
    from workbench.documents.services import documents_import

    report = documents_import(
        project=project, files=[("d/" * 300 + "a.txt", KO.encode()), ("a\x00b.txt", KO.encode()), ("a\ud800b.txt", KO.encode())]
    )
    assert [f.status for f in report.files] == ["failed"] * 3
    assert "over the limit of 500" in report.files[0].error and "NUL character or a lone surrogate" in report.files[1].error
    assert json.dumps(report.as_dict(), ensure_ascii=False).encode()  # storable and printable as UTF-8
    assert not SourceDocument.objects.exists()


SEEDS = [
    ("seed.txt", KO.encode()),
    ("seed.jsonl", files.jsonl({"text": KO, "id": 1, "meta": {"a": [1, 2.5, None, True]}}, {"text": KO2})),
    ("seed.json", json.dumps([{"text": KO, "title": "제목"}], ensure_ascii=False).encode()),
    ("seed.csv", f'id,text\n1,"{KO}"\n2,"{KO2}"\n'.encode()),
    ("seed.zip", files.zip_of({"a.txt": KO.encode(), "b.jsonl": files.jsonl({"text": KO2})})),
    ("seed.docx", files.docx(KO, KO2)),
    ("seed.pdf", files.pdf_raw(b"BT /F1 12 Tf 72 720 Td (Korean constitution) Tj ET")),
    ("seed.hwp", files.hwp_fixture(files.HWP_SOURCE)),
    ("seed.hwpx", files.hwpx(KO, [["가", "나"], ["다", "라"]], KO2)),
]
_counter = iter(range(10**9))


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=0, max_size=8), st.integers(0, 8)), min_size=1, max_size=6
    ),
)
def test_mutated_files_never_break_the_upload(client, owner, project, seed, edits):
    """Random byte edits of valid files of every format: each file is imported whole or reported, never a 500."""
    login(client, owner)
    name, raw = seed
    data = bytearray(raw)
    for where, insert, remove in edits:
        at = int(where * len(data))
        data[at : at + remove] = insert
    unique = f"{next(_counter)}-{name}"
    response = upload(client, project, ("guard.txt", f"{KO2} {unique}".encode()), (unique, bytes(data)))
    assert response.status_code in (200, 400)
    guard, report = response.json()["files"]
    assert guard["status"] in ("imported", "unchanged")
    written = SourceDocument.objects.filter(project=project, origin_filename__startswith=unique)
    if report["status"] == "failed":
        assert report["error"] and not written.exists()
        assert response.status_code == 400
    assert not SourceDocument.objects.filter(chunks__isnull=True).exists()


MEMORY_PROBE = textwrap.dedent(
    """
    import os, resource, sys
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    import django
    django.setup()
    import docx  # loaded before the baseline, as in a running server
    from tests.documents import files
    from workbench.documents.importers import ImportProblem, parse_file

    bombs = [(f"bomb{i}.zip", files.zip_bomb()) for i in range(4)] + [("bomb.docx", files.docx_bomb())]
    bombs += [("bomb.hwp", files.hwp_bomb(1024 ** 3)), ("bomb.hwpx", files.hwpx_bomb())]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, raw in bombs:
        try:
            parse_file(name, raw)
            print("ACCEPTED", name)
        except ImportProblem as exc:
            print("REFUSED", name, exc)
    print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline)
    """
)


def test_refused_bombs_take_little_memory():
    """Four 1 GiB zip bombs, a DOCX and an HWPX whose body XML expands to 400 MiB and an HWP whose body section
    inflates to 1 GiB are refused before they are expanded."""
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("REFUSED") for line in lines) == 7, result.stdout
    assert "the DOCX expands" in result.stdout and "over the limit of 104,857,600 bytes" in result.stdout
    growth_mb = int(lines[-1].split()[1]) / 1024
    assert growth_mb < 200, f"peak memory grew by {growth_mb:.0f} MB"


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "temporary-file"])
def test_a_name_the_browser_percent_encoded_is_decoded(client, owner, project, settings, in_memory):
    """A browser sends `"`, CR and LF in a file name as %22, %0D, %0A (the HTML standard's multipart encoding)."""
    if not in_memory:
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # the upload goes through the temporary-file handler
    login(client, owner)
    boundary = "----workbench"
    disposition = 'form-data; name="files"; filename="보고서 %22최종%22%0A본.txt"'
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/plain\r\n\r\n{KO}\r\n"
        + "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
            for field, value in (("text_field", "text"), ("title_field", "title"), ("id_field", "id"))
        )
        + f"--{boundary}--\r\n"
    ).encode()
    response = client.post(
        reverse("documents:upload", args=[project.slug]),
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["files"][0]["name"] == '보고서 "최종" 본.txt'
    assert SourceDocument.objects.get().origin_filename == '보고서 "최종" 본.txt'


def test_a_file_whose_name_is_not_utf8_is_refused_not_dropped(client, owner, project):
    """A client that sends its file name in another encoding (bytes that are not UTF-8): Django's parser skips that
    part's header, so the file never arrives. The page and the API refuse the request; they do not report an empty
    import as a success."""
    login(client, owner)
    boundary = "----workbench"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="files"; filename="\xba\xb8\xb0\xed\xbc\xad.txt"\r\n'  # 보고서, EUC-KR
        + f"Content-Type: text/plain\r\n\r\n{KO}\r\n".encode()
        + "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
            for field, value in (("text_field", "text"), ("title_field", "title"), ("id_field", "id"))
        ).encode()
        + f"--{boundary}--\r\n".encode()
    )
    multipart = f"multipart/form-data; boundary={boundary}"
    page = client.post(
        reverse("documents:upload", args=[project.slug]), body, content_type=multipart, HTTP_ACCEPT="application/json"
    )
    assert page.status_code == 400 and page.json()["errors"]["files"][0]["code"] == "required"
    api = token_client(owner).generic("POST", f"/api/projects/{project.slug}/documents", body, content_type=multipart)
    assert api.status_code == 400 and "their names in UTF-8" in api.json()["files"][0]
    assert not SourceDocument.objects.exists()
