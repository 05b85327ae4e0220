"""Project setup in the Django admin: presets, members with roles, validation messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_user
from workbench.projects.models import Membership, Project, Role
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


def _members_rows(data, project):
    """The change form's rows for the project's stored members, as the admin renders them."""
    data = dict(data)
    stored = list(project.memberships.order_by("pk"))
    data["memberships-TOTAL_FORMS"] = data["memberships-INITIAL_FORMS"] = str(len(stored))
    for i, m in enumerate(stored):
        data |= {f"memberships-{i}-id": str(m.pk), f"memberships-{i}-project": str(project.pk)}
        data |= {f"memberships-{i}-user": str(m.user_id), f"memberships-{i}-role": m.role}
    return data


def _change(client, project, **overrides):
    base = form_data(name=project.name, slug=project.slug, apply_preset="", **overrides)
    return client.post(reverse("admin:projects_project_change", args=[project.pk]), _members_rows(base, project))


def test_settings_that_would_break_imports_or_the_queue_are_refused(client, owner, project):
    client.login(username="owner", password=PASSWORD)
    for overrides, field, message in [
        ({"chunk_unit": "tokens", "tokenizer": ""}, "chunk_unit", "need a tokenizer"),
        ({"chunk_unit": "tokens", "tokenizer": "/nonexistent/tokenizer.json"}, "chunk_unit", "could not be loaded"),
        ({"lease_seconds": "99999999999999"}, "lease_seconds", "less than or equal to 86400"),
    ]:
        response = _change(client, project, **overrides)
        assert response.status_code == 200, overrides
        errors = response.context["adminform"].form.errors
        assert message in " ".join(errors.get(field, [])), (overrides, errors)
    fresh = Project.objects.get(pk=project.pk)
    assert (fresh.chunk_unit, fresh.tokenizer, fresh.lease_seconds) == ("chars", "", 900)


def test_an_emptied_thresholds_box_means_no_overrides(client, owner, project):
    client.login(username="owner", password=PASSWORD)
    Project.objects.filter(pk=project.pk).update(filter_thresholds={"echo.answer_copied_share": 0.7})
    assert _change(client, project, filter_thresholds="").status_code == 302
    assert Project.objects.get(pk=project.pk).filter_thresholds == {}
    response = client.post(reverse("admin:projects_project_add"), form_data(name="빈 임계값", slug="", filter_thresholds=""))
    assert response.status_code == 302
    assert Project.objects.get(name="빈 임계값").filter_thresholds == {}


def test_the_members_rows_keep_an_admin_and_a_removed_member_gives_back_their_pairs(client, owner, reviewer, project):
    from django.utils import timezone

    from tests.factories import make_pairs
    from workbench.generation.models import QAPair

    client.login(username="owner", password=PASSWORD)
    data = _members_rows(form_data(name=project.name, slug=project.slug, apply_preset=""), project)
    owner_row = next(k[: -len("-user")] for k, v in data.items() if k.endswith("-user") and v == str(owner.pk))
    response = client.post(
        reverse("admin:projects_project_change", args=[project.pk]), data | {f"{owner_row}-role": Role.REVIEWER}
    )
    assert response.status_code == 200 and "at least one admin" in response.content.decode()
    response = client.post(reverse("admin:projects_project_change", args=[project.pk]), data | {f"{owner_row}-DELETE": "on"})
    assert response.status_code == 200 and "at least one admin" in response.content.decode()
    assert project.memberships.get(user=owner).role == Role.ADMIN

    (held,) = make_pairs(project, 1)
    QAPair.objects.filter(pk=held.pk).update(claimed_by=reviewer, lease_expires_at=timezone.now() + timezone.timedelta(minutes=9))
    data = _members_rows(form_data(name=project.name, slug=project.slug, apply_preset=""), project)
    reviewer_row = next(k[: -len("-user")] for k, v in data.items() if k.endswith("-user") and v == str(reviewer.pk))
    response = client.post(reverse("admin:projects_project_change", args=[project.pk]), data | {f"{reviewer_row}-DELETE": "on"})
    assert response.status_code == 302
    assert not project.memberships.filter(user=reviewer).exists()
    held.refresh_from_db()
    assert held.claimed_by is None and held.lease_expires_at is None


def test_a_project_added_with_no_admin_is_administered_by_the_one_who_added_it(client, owner, reviewer):
    client.login(username="owner", password=PASSWORD)
    response = client.post(reverse("admin:projects_project_add"), with_members(form_data(), (reviewer, Role.REVIEWER)))
    assert response.status_code == 302
    project = Project.objects.get(slug="law-qa")
    assert dict(project.memberships.values_list("user__username", "role")) == {"owner": "admin", "reviewer": "reviewer"}


def test_memberships_are_added_in_their_own_admin_but_changed_only_where_an_admin_is_kept(client, owner, project):
    from workbench.projects.models import Membership

    client.login(username="owner", password=PASSWORD)
    membership = project.memberships.get(user=owner)
    change = reverse("admin:projects_membership_change", args=[membership.pk])
    client.post(change, {"project": str(project.pk), "user": str(owner.pk), "role": Role.REVIEWER})
    assert client.post(reverse("admin:projects_membership_delete", args=[membership.pk]), {"post": "yes"}).status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN


def test_a_staff_project_admin_changes_their_projects_settings_without_model_permissions(client, owner, reviewer, project):
    """The guide sends project admins to the Django admin for a project's settings: being staff and the project's admin
    is enough (no Django model permissions granted); other projects stay out of reach."""
    from tests.factories import make_project, make_user

    lead = make_user("lead", is_staff=True)
    mine = make_project(slug="lead-qa", name="Lead QA", admins=[lead], reviewers=[reviewer])
    client.login(username="lead", password=PASSWORD)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and reverse("admin:projects_project_changelist") in index.content.decode()
    assert client.get(reverse("admin:projects_project_change", args=[mine.pk])).status_code == 200
    response = _change(client, mine, lease_seconds="1200", chunk_target_size="800")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    mine.refresh_from_db()
    assert (mine.lease_seconds, mine.chunk_target_size) == (1200, 800)
    page = client.get(reverse("admin:projects_project_change", args=[mine.pk])).content.decode()
    assert "memberships-__prefix__" not in page  # no add row: its user search needs the users' view permission
    # The members' rows are there, and a role is changed with them.
    assert 'name="memberships-TOTAL_FORMS" value="2"' in page and 'name="memberships-1-role"' in page
    rows = _members_rows(form_data(name=mine.name, slug=mine.slug, apply_preset=""), mine)
    i = next(i for i in range(2) if rows[f"memberships-{i}-user"] == str(reviewer.pk))
    rows[f"memberships-{i}-role"] = Role.ADMIN
    assert client.post(reverse("admin:projects_project_change", args=[mine.pk]), rows).status_code == 302
    assert mine.memberships.get(user=reviewer).role == Role.ADMIN
    mine.memberships.filter(user=reviewer).update(role=Role.REVIEWER)
    assert 'name="base_model"' not in page and 'name="tokenizer"' not in page  # what the workers load: operators'
    refused = _change(client, mine, base_model="/etc", tokenizer="/etc/passwd", chunk_unit="tokens")
    assert refused.status_code == 200 and "need a tokenizer" in refused.content.decode()  # the posted one is ignored
    mine.refresh_from_db()
    assert (mine.base_model, mine.tokenizer, mine.chunk_unit) != ("/etc", "/etc/passwd", "tokens")
    other = client.get(reverse("admin:projects_project_change", args=[project.pk]), follow=True)
    assert "doesn’t exist" in other.content.decode()
    assert _change(client, project, lease_seconds="1200").status_code in (302, 403)  # redirected away: not changed
    assert Project.objects.get(pk=project.pk).lease_seconds == 900
    assert client.get(reverse("admin:projects_project_add")).status_code == 403  # adding projects needs the permission
    # A reviewer made staff is not enough.
    reviewer.is_staff = True
    reviewer.save()
    client.login(username="reviewer", password=PASSWORD)
    assert client.get(reverse("admin:projects_project_change", args=[mine.pk])).status_code in (302, 403)


def test_two_admins_demoting_each_other_in_the_admin_leave_one(client, owner, project, monkeypatch):
    """The owner's form was loaded while both were admins; before it is checked, the other admin demotes the owner.
    The owner's own row, left as shown, is not saved: the check counts the stored role, so the form is refused instead
    of leaving the project without an admin."""
    from workbench.projects.admin import MembershipFormSet

    second = make_user("second-admin", is_staff=True)
    Membership.objects.create(project=project, user=second, role=Role.ADMIN)
    client.login(username="owner", password=PASSWORD)
    base = form_data(name=project.name, slug=project.slug, apply_preset="")
    data = _members_rows(base, project)
    i = next(i for i in range(int(data["memberships-TOTAL_FORMS"])) if data[f"memberships-{i}-user"] == str(second.pk))
    data[f"memberships-{i}-role"] = Role.REVIEWER
    check = MembershipFormSet.clean

    def after_the_other_admin(formset):
        Membership.objects.filter(project=project, user=owner).update(role=Role.REVIEWER)
        return check(formset)

    monkeypatch.setattr(MembershipFormSet, "clean", after_the_other_admin)
    response = client.post(reverse("admin:projects_project_change", args=[project.pk]), data)
    assert response.status_code == 200 and "at least one admin" in response.content.decode()
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert (roles["owner"], roles["second-admin"]) == (Role.REVIEWER, Role.ADMIN)
