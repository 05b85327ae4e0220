"""The admin's own import and start-run pages follow the app's rule: project admins (or superusers) only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PASSWORD
from tests.factories import make_project, make_user
from workbench.documents.models import SourceDocument
from workbench.generation.models import GenerationRun

IMPORT = "/admin/documents/sourcedocument/import/"
START = "/admin/generation/generationrun/start/"


def upload(project):
    return {
        "project": str(project.pk),
        "files": SimpleUploadedFile("a.txt", "대한민국은 민주공화국이다.".encode()),
        "text_field": "text",
        "title_field": "title",
        "id_field": "id",
    }


@pytest.fixture
def staff(db):
    return make_user("staffer", is_staff=True)  # staff, no model permissions, no membership


@pytest.mark.parametrize("url", [IMPORT, START])
def test_staff_without_project_admin_membership_gets_403(client, staff, project, reviewer, url):
    for user in (staff, reviewer):
        user.is_staff = True
        user.save()
        client.login(username=user.username, password=PASSWORD)
        assert client.get(url).status_code == 403
        data = upload(project) if url == IMPORT else {"project": str(project.pk)}
        assert client.post(url, data).status_code == 403
    assert not SourceDocument.objects.exists() and not GenerationRun.objects.exists()


def test_a_project_admin_acts_only_on_projects_they_administer(client, staff, project):
    mine = make_project(slug="mine", admins=[staff])
    client.login(username=staff.username, password=PASSWORD)
    page = client.get(IMPORT).content.decode()
    assert f">{mine.name}<" in page and f">{project.name}<" not in page
    response = client.post(IMPORT, upload(project))  # someone else's project: not a valid choice
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = client.post(START, {"project": str(project.pk)})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not SourceDocument.objects.exists() and not GenerationRun.objects.exists()
    response = client.post(IMPORT, upload(mine))
    assert response.status_code == 302 and SourceDocument.objects.filter(project=mine).count() == 1


def test_superusers_act_on_every_project(client, owner, project):
    other = make_project(slug="other")
    client.login(username=owner.username, password=PASSWORD)
    assert client.post(IMPORT, upload(other)).status_code == 302
    assert SourceDocument.objects.filter(project=other).count() == 1
