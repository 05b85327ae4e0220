"""Test data builders, in one place."""
from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from workbench.projects.models import Project
from workbench.projects.services import project_create

_seq = itertools.count(1)


def make_user(username: str | None = None, *, password: str = "pw-for-tests-only", **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def make_project(*, slug: str | None = None, name: str | None = None, admins=(), reviewers=(), **fields) -> Project:
    n = next(_seq)
    return project_create(
        slug=slug or f"project-{n}", name=name or f"Project {n}", admins=admins, reviewers=reviewers, **fields
    )
