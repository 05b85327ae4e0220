"""Files a Korean team really has: every valid CP949 file, and Korean names in zips made by Linux zip and by Korean
Windows, through the real upload view (the page, the command and the API share one import service)."""

from __future__ import annotations

import io
import subprocess
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.conftest import PASSWORD, SHARED_DATA
from workbench.documents.models import SourceDocument
from workbench.documents.text import normalize_text

BILLS = sorted((SHARED_DATA / "kobill").glob("*.txt")) + [SHARED_DATA / "constitution.txt"]


def upload(client, project, *files):
    client.login(username="owner", password=PASSWORD)
    response = client.post(
        f"/api/projects/{project.slug}/documents", {"files": [SimpleUploadedFile(name, raw) for name, raw in files]}
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("path", BILLS, ids=lambda p: p.name)
def test_every_bill_in_cp949_imports_and_says_its_encoding(client, project, path):
    """As `iconv -c -f utf-8 -t cp949` writes them: what CP949 cannot hold dropped, the rest byte for byte."""
    original = path.read_text(encoding="utf-8")
    raw = original.encode("cp949", errors="ignore")
    status, report = upload(client, project, (path.name, raw))
    assert status in (200, 201), report
    (entry,) = report["files"]
    assert entry["status"] == "imported" and entry["encoding"] == "cp949", entry
    stored = SourceDocument.objects.get(project=project).text
    assert stored == normalize_text(raw.decode("cp949"))


def test_strict_cp949_is_not_taken_for_text_in_another_encoding(project):
    from workbench.documents.text import decode_text

    latin = "Café crème brûlée, señor: 50 °C, Mädchen, Øre".encode("latin-1")
    text, encoding = decode_text(latin)
    assert encoding != "cp949" and text.startswith("Caf")


def raw_name_zip(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A zip whose member names are the given bytes without the UTF-8 flag, as Linux zip and Korean Windows write
    them (Python's zipfile would set the flag): written under ASCII names of the same length, then renamed."""
    buf = io.BytesIO()
    names = []
    with zipfile.ZipFile(buf, "w") as archive:
        for i, (raw_name, data) in enumerate(entries):
            placeholder = f"m{i:02d}".ljust(len(raw_name) - 4, "_") + ".txt"
            assert len(placeholder) == len(raw_name)
            archive.writestr(placeholder, data)
            names.append((placeholder.encode(), raw_name))
    out = buf.getvalue()
    for placeholder, raw_name in names:
        assert out.count(placeholder) == 2  # local header and central directory
        out = out.replace(placeholder, raw_name)
    return out


def test_korean_names_in_zips_from_linux_and_windows(client, project):
    archive = raw_name_zip(
        [
            ("법안/국회법_개정안.txt".encode(), "국회법 개정안 본문입니다. 위원회의 구성을 바꾼다.".encode()),
            ("법안/헌법_전문.txt".encode("cp949"), "유구한 역사와 전통에 빛나는 우리 대한국민은".encode("cp949")),
        ]
    )
    infos = zipfile.ZipFile(io.BytesIO(archive)).infolist()
    assert not any(i.flag_bits & 0x800 for i in infos) and "법안" not in infos[0].filename  # zipfile alone: mojibake
    status, report = upload(client, project, ("법안.zip", archive))
    assert status in (200, 201), report
    titles = sorted(SourceDocument.objects.filter(project=project).values_list("title", flat=True))
    assert titles == ["국회법_개정안", "헌법_전문"]
    assert report["files"][0]["encoding"] == "cp949, utf-8"


def test_a_zip_made_by_linux_zip_with_a_korean_folder(tmp_path, project, capsys):
    folder = tmp_path / "법안"
    folder.mkdir()
    (folder / "첫째_법안.txt").write_text("첫째 법안의 본문입니다. 공무원의 정원을 정한다.", encoding="utf-8")
    subprocess.run(
        ["zip", "-q", "-r", str(tmp_path / "x.zip"), "법안"],
        cwd=tmp_path,
        check=True,
        env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
    )
    call_command("import_documents", "--project", project.slug, str(tmp_path / "x.zip"))
    assert list(SourceDocument.objects.filter(project=project).values_list("title", flat=True)) == ["첫째_법안"]
