"""The API answers in JSON also where Django itself refuses a request: a body past DATA_UPLOAD_MAX_MEMORY_SIZE, more
files than DATA_UPLOAD_MAX_NUMBER_FILES, more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (raised while the view reads
the body), a URL under /api/ that names nothing, and a server error (a JSON 500, never Django's HTML page, DEBUG on or
off). A client reads `detail` as it does from every other refusal."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.core.signals import got_request_exception
from django.http import Http404, JsonResponse
from django.utils.log import log_response
from django.views import defaults
from rest_framework.exceptions import NotFound
from rest_framework.views import exception_handler, set_rollback

SERVER_ERROR = "The server failed to complete this request; the error has been logged. Try again, or report it."


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _limit_detail(exception) -> str | None:
    if isinstance(exception, RequestDataTooBig):
        return f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)} MiB."
    if isinstance(exception, TooManyFilesSent):
        return f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request; send them in several."
    if isinstance(exception, TooManyFieldsSent):
        return f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields in one request."
    return None


class ApiLimitsAsJson:
    """Middleware: the request limits above, on an API path, as a JSON 400 (413 for a body too large)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return _limit_response(exception) if _is_api(request) else None


def _limit_response(exception) -> JsonResponse | None:
    detail = _limit_detail(exception)
    if detail is None:
        return None
    return JsonResponse({"detail": detail}, status=413 if isinstance(exception, RequestDataTooBig) else 400)


def not_found(request, exception=None):
    """handler404 (DEBUG off): JSON on API paths, the site's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """handler400 (DEBUG off): JSON on API paths, the site's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": _limit_detail(exception) or "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request):
    """handler500 (DEBUG off): JSON on API paths, the site's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)


def api_exception_handler(exc, context):
    """REST framework's EXCEPTION_HANDLER. Its own refusals as it answers them, except that Django's 404 says only "Not
    found." (get_object_or_404's message names the model class: "No ImportJob matches the given query."); a view that
    means more raises NotFound with a message of its own. Django's request limits, raised while the view reads the
    body, answer as ApiLimitsAsJson answers them. An exception nothing handled is a JSON 500, logged and signalled as
    Django would (error reporting, the test client), where Django would answer with an HTML page."""
    if isinstance(exc, Http404):
        exc = NotFound()
    response = exception_handler(exc, context) or _limit_response(exc)
    if response is not None:
        return response
    request = getattr(context.get("request"), "_request", None)
    if isinstance(exc, SuspiciousOperation):
        # A malformed request (a broken multipart body, say): the client's error, logged where Django logs it, as 400.
        logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
        return JsonResponse({"detail": "Bad request: the request could not be read."}, status=400)
    set_rollback()
    got_request_exception.send(sender=None, request=request)
    response = JsonResponse({"detail": SERVER_ERROR}, status=500)
    log_response(
        "%s: %s", "Internal Server Error", request.path if request else "", response=response, request=request, exception=exc
    )
    return response
