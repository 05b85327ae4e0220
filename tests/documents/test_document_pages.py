"""Upload form, chunk preview, re-chunking and the import API, with the three standing users."""

from __future__ import annotations

import io
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import PASSWORD, SHARED_DATA
from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.models import Chunk, SourceDocument
from workbench.documents.services import documents_import, project_rechunk
from workbench.generation.models import GenerationRun, QAPair


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


def test_admin_uploads_several_files(client, owner, project):
    login(client, owner)
    response = upload(client, project, ("a.txt", KO.encode()), ("b.jsonl", files.jsonl({"text": KO2})))
    assert response.status_code == 200
    assert [f["status"] for f in response.json()["files"]] == ["imported", "imported"]
    assert SourceDocument.objects.filter(project=project).count() == 2


def test_upload_reports_bad_file_per_file(client, owner, project):
    login(client, owner)
    response = upload(client, project, ("a.txt", KO.encode()), ("b.csv", b"id,body\n1,x\n"))
    assert response.status_code == 400
    body = response.json()
    assert body["files"][1]["error"] == "no 'text' column (columns: id, body)"
    assert SourceDocument.objects.filter(project=project).count() == 1


def test_reviewer_cannot_upload(client, reviewer, project):
    login(client, reviewer)
    assert upload(client, project, ("a.txt", KO.encode())).status_code == 403
    assert not SourceDocument.objects.exists()


def test_outsider_gets_404_on_document_pages(client, outsider, project):
    documents_import(project=project, files=[("a.txt", KO.encode())])
    doc = SourceDocument.objects.get()
    login(client, outsider)
    assert client.get(reverse("documents:list", args=[project.slug])).status_code == 404
    assert client.get(reverse("documents:preview", args=[project.slug, doc.pk])).status_code == 404
    assert upload(client, project, ("a.txt", KO2.encode())).status_code == 404
    assert client.post(reverse("documents:rechunk", args=[project.slug])).status_code == 404


def test_plain_form_post_without_javascript(client, owner, project):
    login(client, owner)
    response = client.post(
        reverse("documents:upload", args=[project.slug]),
        {"files": [SimpleUploadedFile("a.txt", KO.encode())], "text_field": "text", "title_field": "title", "id_field": "id"},
        follow=True,
    )
    assert "a.txt: 1 new document," in response.content.decode()


def test_preview_shows_count_and_histogram_without_writing(client, reviewer, project):
    text = (SHARED_DATA / "constitution.txt").read_bytes()
    documents_import(project=project, files=[("constitution.txt", text)])
    doc = SourceDocument.objects.get()
    stored = Chunk.objects.count()
    login(client, reviewer)
    response = client.get(reverse("documents:preview", args=[project.slug, doc.pk]))
    assert response.status_code == 200
    assert len(response.context["chunks"]) == stored
    smaller = client.get(reverse("documents:preview", args=[project.slug, doc.pk]), {"target": 300, "maximum": 500, "overlap": 0})
    assert len(smaller.context["chunks"]) > stored
    assert sum(b["count"] for b in smaller.context["histogram"]) == len(smaller.context["chunks"])
    bad = client.get(reverse("documents:preview", args=[project.slug, doc.pk]), {"target": 600, "maximum": 500})
    assert "at most the maximum" in bad.content.decode()
    assert Chunk.objects.count() == stored


def test_preview_of_a_long_document_shows_its_chunks_a_page_at_a_time(client, reviewer, project, monkeypatch):
    from workbench.documents import views

    monkeypatch.setattr(views, "PREVIEW_CHUNKS_PER_PAGE", 5)  # 100 in use: the same path at a test's size
    text = (SHARED_DATA / "constitution.txt").read_bytes()
    documents_import(project=project, files=[("constitution.txt", text)])
    doc = SourceDocument.objects.get()
    login(client, reviewer)
    url = reverse("documents:preview", args=[project.slug, doc.pk])
    first = client.get(url, {"target": 300, "maximum": 500, "overlap": 0})
    total = len(first.context["chunks"])
    assert total > 10 and first.content.decode().count('<pre class="chunk-text">') == 5
    assert 'href="?target=300&amp;maximum=500&amp;overlap=0&amp;page=2"' in first.content.decode()
    second = client.get(url, {"target": 300, "maximum": 500, "overlap": 0, "page": 2}).content.decode()
    assert second.count('<pre class="chunk-text">') == 5 and "#5 · characters" in second and "#4 · characters" not in second
    assert f"Chunks 5–9 of {total}" in second


def test_document_text_is_escaped(client, owner, project):
    documents_import(project=project, files=[("x.md", b"# <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>")])
    doc = SourceDocument.objects.get()
    login(client, owner)
    for url in (reverse("documents:list", args=[project.slug]), reverse("documents:preview", args=[project.slug, doc.pk])):
        body = client.get(url).content.decode()
        assert "<script>alert(1)" not in body and "<img src=x" not in body


def test_rechunk_keeps_pairs_on_their_chunks(owner, project):
    documents_import(project=project, files=[("c.txt", (SHARED_DATA / "constitution.txt").read_bytes())])
    old = Chunk.objects.filter(is_current=True).first()
    run = GenerationRun.objects.create(project=project)
    pair = QAPair.objects.create(project=project, chunk=old, question="질문", answer="답변")
    project.chunk_target_size, project.chunk_max_size = 400, 600
    project.save()
    result = project_rechunk(project=project)
    assert result["created"] > 0 and result["retired"] > 0
    pair.refresh_from_db()
    assert pair.chunk_id == old.pk and pair.chunk.text == old.text
    assert not Chunk.objects.get(pk=old.pk).is_current
    current = Chunk.objects.filter(is_current=True)
    assert current.exists() and all(c.size <= 600 for c in current)
    # Going back to the first settings revives the first chunks instead of writing copies.
    project.chunk_target_size, project.chunk_max_size = 900, 1400
    project.save()
    again = project_rechunk(project=project)
    assert again["created"] == 0 and again["revived"] > 0
    assert Chunk.objects.get(pk=old.pk).is_current
    assert run.pk


def test_import_documents_command(project, capsys):
    call_command(
        "import_documents", "--project", project.slug, str(SHARED_DATA / "kobill"), str(SHARED_DATA / "constitution.txt")
    )
    out = capsys.readouterr().out
    assert "11 documents imported from 11 files" in out
    call_command("import_documents", "--project", project.slug, str(SHARED_DATA / "constitution.txt"))
    assert "unchanged" in capsys.readouterr().out


def test_import_command_klue_premises(project, capsys):
    call_command(
        "import_documents", "--project", project.slug, "--text-field", "premise", str(SHARED_DATA / "klue-nli-v1.1_dev.json")
    )
    premises = {r["premise"] for r in json.loads((SHARED_DATA / "klue-nli-v1.1_dev.json").read_text())}
    assert SourceDocument.objects.filter(project=project).count() == len(premises)


def test_import_command_fails_loudly(project, tmp_path):
    import pytest
    from django.core.management import CommandError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "좋음"}\n{"text": ')
    with pytest.raises(CommandError, match="Some files were not imported"):
        call_command("import_documents", "--project", project.slug, str(bad))
    with pytest.raises(CommandError, match="No project"):
        call_command("import_documents", "--project", "nope", str(bad))


def test_import_command_skips_a_folders_hidden_files_and_refuses_what_it_cannot_read(project, tmp_path, capsys):
    import os

    import pytest
    from django.core.management import CommandError

    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.md").write_text("# 제목\n\n" + KO, encoding="utf-8")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    call_command("import_documents", "--project", project.slug, str(folder))
    out = capsys.readouterr().out
    assert "Skipped 2 hidden files (names starting with a dot)." in out and "1 document imported from 1 file." in out
    assert list(SourceDocument.objects.values_list("origin_filename", flat=True)) == [str(folder / "sub" / "a.md")]

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CommandError, match="No file to import in .*empty"):
        call_command("import_documents", "--project", project.slug, str(empty))
    only_hidden = tmp_path / "only-hidden"
    only_hidden.mkdir()
    (only_hidden / ".DS_Store").write_bytes(b"\x00")
    with pytest.raises(CommandError, match=r"No file to import in .*only-hidden \(1 hidden\)"):
        call_command("import_documents", "--project", project.slug, str(only_hidden))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(CommandError, match="Not a regular file"):
            call_command("import_documents", "--project", project.slug, str(path))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_documents", "--project", project.slug, str(tmp_path / "missing.txt"))


def test_api_import_with_token(client, owner, reviewer, outsider, project):
    def token(user):
        out = io.StringIO()
        call_command("create_api_token", user.username, stdout=out)
        return out.getvalue().strip()

    url = f"/api/projects/{project.slug}/documents"

    def payload():
        return {"files": [SimpleUploadedFile("a.jsonl", files.jsonl({"text": KO}, {"text": KO2}))]}

    response = client.post(url, payload(), HTTP_AUTHORIZATION=f"Token {token(owner)}")
    assert response.status_code == 200 and response.json()["documents_created"] == 2
    assert client.post(url, payload(), HTTP_AUTHORIZATION=f"Token {token(reviewer)}").status_code == 403
    assert client.post(url, payload(), HTTP_AUTHORIZATION=f"Token {token(outsider)}").status_code == 404
    assert client.post(url, payload()).status_code in (401, 403)
    bad = client.post(url, {}, HTTP_AUTHORIZATION=f"Token {token(owner)}")
    assert bad.status_code == 400 and "No file was sent" in bad.json()["files"][0]
    # No body at all (no Content-Type either): the same answer, not a server error.
    bare = client.generic("POST", url, b"", HTTP_AUTHORIZATION=f"Token {token(owner)}")
    assert bare.status_code == 400 and "No file was sent" in bare.json()["files"][0]


def test_openapi_schema_lists_the_import(client, owner):
    login(client, owner)
    response = client.get("/api/openapi.json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/")
    assert "/api/projects/{slug}/documents" in response.json()["paths"]


def test_django_admin_import(client, owner, project):
    login(client, owner)
    response = client.post(
        reverse("admin:documents_import"),
        {
            "project": project.pk,
            "files": [SimpleUploadedFile("a.txt", KO.encode()), SimpleUploadedFile("b.csv", b"x\n1\n")],
            "text_field": "text",
            "title_field": "title",
            "id_field": "id",
        },
        follow=True,
    )
    body = response.content.decode()
    assert "a.txt: 1 new document," in body.lower()
    assert "B.csv (row 1): no &#x27;text&#x27; column (columns: x)" in body
    assert SourceDocument.objects.filter(project=project).count() == 1
