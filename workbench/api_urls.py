"""The JSON API under /api/ (token authentication: `Authorization: Token <key>`)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from workbench.documents.api import DocumentImportView, ImportJobView
from workbench.generation.api import RunCancelView, RunCreateView, RunDetailView
from workbench.projects.api_errors import not_found
from workbench.review.api import ClaimView, ReviewView, StatsView

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("projects/<slug:slug>/documents", DocumentImportView.as_view(), name="api-documents-import"),
    path("projects/<slug:slug>/imports/<int:job_id>", ImportJobView.as_view(), name="api-import"),
    path("projects/<slug:slug>/runs", RunCreateView.as_view(), name="api-runs-create"),
    path("runs/<int:run_id>", RunDetailView.as_view(), name="api-run"),
    path("runs/<int:run_id>/cancel", RunCancelView.as_view(), name="api-run-cancel"),
    path("projects/<slug:slug>/queue/claim", ClaimView.as_view(), name="api-claim"),
    path("pairs/<int:pair_id>/review", ReviewView.as_view(), name="api-review"),
    path("projects/<slug:slug>/stats", StatsView.as_view(), name="api-stats"),
    # Anything else under /api/ names nothing: JSON also with DEBUG on (`bin/start`), where handler404 is not used.
    re_path(r"", not_found),
]
