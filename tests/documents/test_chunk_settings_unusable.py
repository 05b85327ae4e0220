"""A project whose chunking settings cannot be used (a tokenizer that does not load, set before the admin checked it or
a hub id that cannot be reached): imports, re-chunking and the chunk preview say so, and nothing is written or retired."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.review.test_api import token_client
from workbench.documents.models import Chunk, SourceDocument
from workbench.documents.services import source_document_create
from workbench.projects.models import Project

KO = "국회는 국민의 보통·평등·직접·비밀선거에 의하여 선출된 국회의원으로 구성한다. 국회의원의 수는 법률로 정한다."
REASON = "chunking settings cannot be used"


def test_imports_rechunking_and_the_preview_say_what_is_wrong(client, owner, project):
    document, _ = source_document_create(project=project, title="헌법", text=KO)
    Project.objects.filter(pk=project.pk).update(chunk_unit="tokens", tokenizer="/nonexistent/tokenizer.json")
    client.login(username=owner.username, password=PASSWORD)

    page = client.post(
        reverse("documents:upload", args=[project.slug]),
        {"files": [SimpleUploadedFile("새.txt", KO.encode())], "text_field": "text", "title_field": "title", "id_field": "id"},
        follow=True,
    )
    assert page.status_code == 200 and REASON in page.content.decode() and "/nonexistent/tokenizer.json" in page.content.decode()
    api = token_client(owner).post(
        f"/api/projects/{project.slug}/documents", {"files": [SimpleUploadedFile("새.txt", KO.encode())]}, format="multipart"
    )
    assert api.status_code in (200, 400) and REASON in api.json()["files"][0]["error"]
    assert SourceDocument.objects.filter(project=project).count() == 1

    current = set(Chunk.objects.filter(document=document, is_current=True).values_list("pk", flat=True))
    page = client.post(reverse("documents:rechunk", args=[project.slug]), follow=True)
    assert page.status_code == 200 and REASON in page.content.decode() and "Nothing was re-chunked" in page.content.decode()
    assert set(Chunk.objects.filter(document=document, is_current=True).values_list("pk", flat=True)) == current

    page = client.get(reverse("documents:preview", args=[project.slug, document.pk]))
    assert page.status_code == 200 and REASON in page.content.decode()
