"""The JSON API under /api/ (token authentication: `Authorization: Token <key>`)."""
from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView

from workbench.documents.api import DocumentImportView

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("projects/<slug:slug>/documents", DocumentImportView.as_view(), name="api-documents-import"),
]
