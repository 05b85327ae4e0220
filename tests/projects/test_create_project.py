from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from workbench.projects.models import Membership, Project, Role
from workbench.projects.presets import PRESETS


def test_creates_project_with_preset_and_roles(owner, reviewer):
    call_command("create_project", "laws", "--name", "법령", "--adapter", "writing", "--admin", "owner", "--reviewer", "reviewer")
    project = Project.objects.get(slug="laws")
    assert project.name == "법령"
    assert project.adapter == PRESETS["writing"].adapter_id
    assert project.prompt_template == PRESETS["writing"].prompt_template
    assert (project.temperature, project.max_new_tokens) == (1.0, 256)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"owner": Role.ADMIN, "reviewer": Role.REVIEWER}


def test_several_reviewers(owner, reviewer, outsider):
    call_command("create_project", "laws", "--name", "Laws", "--admin", "owner", "--reviewer", "reviewer", "outsider")
    assert Membership.objects.filter(project__slug="laws", role=Role.REVIEWER).count() == 2


def test_missing_user_is_a_clear_error_and_writes_nothing(owner):
    with pytest.raises(CommandError, match="No such user: ghost"):
        call_command("create_project", "laws", "--name", "Laws", "--admin", "owner", "--reviewer", "ghost")
    assert not Project.objects.filter(slug="laws").exists()


def test_second_run_with_same_slug_fails_and_changes_nothing(owner, reviewer):
    call_command("create_project", "laws", "--name", "Laws", "--admin", "owner")
    with pytest.raises(CommandError, match="already exists. Nothing was changed"):
        call_command(
            "create_project", "laws", "--name", "Other", "--adapter", "writing", "--admin", "owner", "--reviewer", "reviewer"
        )
    project = Project.objects.get(slug="laws")
    assert project.name == "Laws" and project.adapter_preset == "simple-qa"
    assert list(project.memberships.values_list("user__username", flat=True)) == ["owner"]


def test_a_project_without_an_admin_is_refused(owner, reviewer):
    with pytest.raises(CommandError, match="at least one admin"):
        call_command("create_project", "laws", "--name", "Laws", "--reviewer", "reviewer")
    assert not Project.objects.exists()


def test_bad_slug_is_rejected(owner):
    with pytest.raises(CommandError, match="slug"):
        call_command("create_project", "not a slug!", "--name", "x", "--admin", "owner")
    assert Project.objects.count() == 0
