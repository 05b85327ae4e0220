"""The review queue's two paths: PostgreSQL's single statements and the ORM one the embedded SQLite start uses."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["one statement", "orm"])
def review_path(request, monkeypatch):
    """Run the test on both paths; the ORM path is database-agnostic, so it is forced here on PostgreSQL (the SQLite
    start itself is covered by test_orm_path.py)."""
    if request.param == "orm":
        monkeypatch.setattr("workbench.review.services._postgres", lambda: False)
    return request.param
