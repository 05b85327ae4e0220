"""Project setup in the Django admin: presets, members with roles, validation messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from workbench.projects.models import Project, Role
from workbench.projects.presets import PRESETS


def form_data(**overrides):
    project = Project()  # model defaults, as the add form shows them
    data = {
        "name": "법률 QA",
        "slug": "law-qa",
        "description": "",
        "adapter_preset": "simple-qa",
        "apply_preset": "on",
        "base_model": project.base_model,
        "base_model_revision": "",
        "adapter": project.adapter,
        "adapter_revision": "",
        "prompt_template": project.prompt_template,
        "temperature": "1.0",
        "top_p": "1.0",
        "max_new_tokens": "256",
        "samples_per_chunk": "3",
        "chunk_unit": "chars",
        "chunk_target_size": "900",
        "chunk_max_size": "1400",
        "chunk_overlap": "0",
        "tokenizer": "",
        "filter_thresholds": "{}",
        "queue_order": "flagged_first",
        "lease_seconds": "900",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def with_members(data, *members):
    data = dict(data)
    data["memberships-TOTAL_FORMS"] = str(len(members))
    for i, (user, role) in enumerate(members):
        data[f"memberships-{i}-user"] = str(user.pk)
        data[f"memberships-{i}-role"] = role
    return data


def test_admin_creates_project_with_members_from_preset(client, owner, reviewer):
    client.login(username="owner", password=PASSWORD)
    data = with_members(
        form_data(adapter_preset="creative-writing", prompt_template="stale {text}"),
        (owner, Role.ADMIN),
        (reviewer, Role.REVIEWER),
    )
    response = client.post(reverse("admin:projects_project_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    project = Project.objects.get(slug="law-qa")
    assert project.created_by == owner
    assert project.adapter == PRESETS["creative-writing"].adapter_id
    assert project.prompt_template == PRESETS["creative-writing"].prompt_template
    assert dict(project.memberships.values_list("user__username", "role")) == {"owner": "admin", "reviewer": "reviewer"}


def test_bad_prompt_template_is_explained(client, owner):
    client.login(username="owner", password=PASSWORD)
    response = client.post(reverse("admin:projects_project_add"), form_data(apply_preset="", prompt_template="{text} {secret}"))
    assert response.status_code == 200
    assert "may use only {text} and {title}; {secret} is not allowed" in response.content.decode()
    assert not Project.objects.exists()


def test_chunk_sizes_are_checked(client, owner):
    client.login(username="owner", password=PASSWORD)
    response = client.post(reverse("admin:projects_project_add"), form_data(chunk_target_size="2000"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The chunk target size must not be larger than the chunk maximum size." in page
    assert "project_chunk_target_le_max" not in page  # the constraint's message, not its name
    overlap = client.post(reverse("admin:projects_project_add"), form_data(chunk_overlap="900"))
    assert "The chunk overlap must be smaller than the chunk target size." in overlap.content.decode()
    assert not Project.objects.exists()


def test_thresholds_must_be_numbers(client, owner):
    client.login(username="owner", password=PASSWORD)
    response = client.post(reverse("admin:projects_project_add"), form_data(filter_thresholds='{"echo": "high"}'))
    assert response.status_code == 200
    assert "Filter thresholds must be a JSON object of names to numbers" in response.content.decode()


@pytest.mark.parametrize(
    "thresholds,message",
    [
        ('{"echo.question_overlap": 0.7}', "&#x27;echo.question_overlap&#x27;: no such threshold"),
        ('{"echo.answer_longest_span": NaN}', "must be a finite number of at least 0, not nan"),
        ('{"echo.answer_longest_span": Infinity}', "must be a finite number of at least 0, not inf"),
        ('{"duplicate.similarity": -0.5}', "must be a finite number of at least 0, not -0.5"),
        ('{"severity.duplicate": 7}', "must be 1 (reject) or 0 (warning), not 7"),
        ('{"severity.bogus": 1}', "&#x27;severity.bogus&#x27;: no such flag"),
    ],
)
def test_thresholds_name_what_the_filters_know(client, owner, thresholds, message):
    """A typo, NaN, a negative number or an unknown severity is refused on the form with what is allowed; nothing is
    saved (NaN was a 500 from the database, an unknown name was silently ignored by the filters)."""
    client.login(username="owner", password=PASSWORD)
    response = client.post(reverse("admin:projects_project_add"), form_data(filter_thresholds=thresholds))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Project.objects.exists()


def test_editing_thresholds_keeps_the_prompt(client, owner, project):
    client.login(username="owner", password=PASSWORD)
    data = form_data(
        name=project.name,
        slug=project.slug,
        apply_preset="",
        prompt_template="{title}\n\n{text}",
        filter_thresholds='{"echo.answer_copied_share": 0.7, "severity.duplicate": 1}',
    )
    data["memberships-INITIAL_FORMS"] = "0"
    response = client.post(reverse("admin:projects_project_change", args=[project.pk]), data)
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.filter_thresholds == {"echo.answer_copied_share": 0.7, "severity.duplicate": 1}
    assert project.prompt_template == "{title}\n\n{text}"


def test_reviewer_cannot_open_admin(client, reviewer):
    client.login(username="reviewer", password=PASSWORD)
    response = client.get(reverse("admin:projects_project_add"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_a_hangul_only_name_gets_a_romanised_slug(client, owner):
    client.login(username="owner", password=PASSWORD)
    for _ in range(2):
        response = client.post(reverse("admin:projects_project_add"), form_data(name="헌법 질의응답", slug=""))
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert sorted(Project.objects.values_list("slug", flat=True)) == ["heonbeob-jiluieungdab", "heonbeob-jiluieungdab-2"]
    # A name with nothing to romanise still gets a slug.
    response = client.post(reverse("admin:projects_project_add"), form_data(name="…", slug=""))
    assert response.status_code == 302 and Project.objects.filter(slug="project").exists()


def test_staff_who_add_a_project_administer_it_and_see_it(client, reviewer):
    """The admin shows a non-superuser only the projects they administer: one who adds a project becomes its admin (even
    after naming themself a reviewer in the members rows), so the project they saved is there to open."""
    from django.contrib.auth.models import Permission

    from tests.factories import make_user

    dana = make_user("dana", is_staff=True)
    codenames = ["add_project", "change_project", "view_project", "add_membership", "change_membership", "view_membership"]
    dana.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.login(username="dana", password=PASSWORD)
    data = with_members(form_data(), (dana, Role.REVIEWER), (reviewer, Role.REVIEWER))
    response = client.post(reverse("admin:projects_project_add"), data, follow=True)
    assert response.status_code == 200
    project = Project.objects.get(slug="law-qa")
    assert project.created_by == dana
    assert dict(project.memberships.values_list("user__username", "role")) == {"dana": "admin", "reviewer": "reviewer"}
    assert project in response.context["cl"].queryset  # the changelist it lands on lists it
    assert "your membership is admin" in response.content.decode()
    assert client.get(reverse("admin:projects_project_change", args=[project.pk])).status_code == 200
    # Without naming themself at all, the same.
    response = client.post(reverse("admin:projects_project_add"), form_data(slug="law-qa-2", name="법률 QA 2"))
    assert response.status_code == 302
    assert Project.objects.get(slug="law-qa-2").memberships.get(user=dana).role == Role.ADMIN
