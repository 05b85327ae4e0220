"""The API answers in JSON also where Django itself refuses a request: a body past DATA_UPLOAD_MAX_MEMORY_SIZE, more
files than DATA_UPLOAD_MAX_NUMBER_FILES, more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (raised while the view reads
the body), and a URL under /api/ that names nothing. A client reads `detail` as it does from every other refusal."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.views import defaults


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
        detail = _limit_detail(exception) if _is_api(request) else None
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
