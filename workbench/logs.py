"""Logging filters."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Drops the traceback of a request that ended in a client error (4xx): Django logs the PermissionDenied or
    BadRequest that answered it with its stack, which says nothing an operator needs. Server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
