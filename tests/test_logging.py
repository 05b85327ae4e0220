"""What the workbench's logs say about requests."""

from __future__ import annotations

import logging

from django.urls import reverse


def test_a_403_is_logged_in_one_line(client, project, reviewer, caplog):
    client.force_login(reviewer)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.post(reverse("quality:rescore", args=[project.slug])).status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == f"Forbidden (Permission denied): {reverse('quality:rescore', args=[project.slug])}"
    assert record.exc_info is None and "Traceback" not in caplog.text


def test_a_server_error_keeps_its_traceback(rf):
    from workbench.logs import ClientErrorsWithoutTraceback

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    for status, kept in ((500, True), (403, False), (400, False)):
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", (), exc_info)
        record.status_code = status
        assert ClientErrorsWithoutTraceback().filter(record)
        assert (record.exc_info is not None) is kept
