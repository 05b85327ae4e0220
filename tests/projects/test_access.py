"""Members see their projects; outsiders get 404 and never see a project listed."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_anonymous_is_sent_to_login(client, project):
    response = client.get(reverse("projects:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_member_sees_project_in_list_and_detail(client, project, reviewer):
    login(client, reviewer)
    assert project.name in client.get(reverse("projects:list")).content.decode()
    response = client.get(reverse("projects:detail", args=[project.slug]))
    assert response.status_code == 200
    assert "Reviewer" in response.content.decode()


def test_outsider_does_not_see_project_in_list(client, project, outsider):
    login(client, outsider)
    body = client.get(reverse("projects:list")).content.decode()
    assert project.name not in body and "not a member of any project" in body
    assert "Ask a project's admin to add you" in body and "admin/projects/project/add" not in body
    # Staff are sent to the admin only with the permission to add projects there (it answers 403 without).
    from django.contrib.auth.models import Permission

    outsider.is_staff = True
    outsider.save()
    body = client.get(reverse("projects:list")).content.decode()
    assert "or an operator for the permission to add projects" in body and "admin/projects/project/add" not in body
    outsider.user_permissions.add(Permission.objects.get(codename="add_project"))
    body = client.get(reverse("projects:list")).content.decode()
    assert "Create one in the" in body and reverse("admin:projects_project_add") in body


def test_outsider_gets_404_for_project(client, project, outsider):
    login(client, outsider)
    assert client.get(reverse("projects:detail", args=[project.slug])).status_code == 404


def test_unknown_project_is_404_like_a_forbidden_one(client, reviewer):
    login(client, reviewer)
    assert client.get(reverse("projects:detail", args=["no-such"])).status_code == 404


def test_project_text_is_escaped(client, owner):
    from tests.factories import make_project

    project = make_project(name="<img src=x onerror=alert(1)>", description="<script>alert(2)</script>", admins=[owner])
    login(client, owner)
    body = client.get(reverse("projects:detail", args=[project.slug])).content.decode()
    assert "<script>alert(2)" not in body and "&lt;script&gt;alert(2)" in body
    assert "<img src=x" not in body


def test_logout_ends_the_session(client, reviewer, project):
    login(client, reviewer)
    client.post(reverse("logout"))
    assert client.get(reverse("projects:detail", args=[project.slug])).status_code == 302
