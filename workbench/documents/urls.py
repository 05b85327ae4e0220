from django.urls import path

from workbench.documents import views

app_name = "documents"
urlpatterns = [
    path("p/<slug:slug>/documents/", views.document_list, name="list"),
    path("p/<slug:slug>/documents/upload", views.document_upload, name="upload"),
    path("p/<slug:slug>/documents/imports/<int:pk>.json", views.import_status, name="import_status"),
    path("p/<slug:slug>/documents/rechunk", views.rechunk, name="rechunk"),
    path("p/<slug:slug>/documents/<int:pk>/preview", views.document_preview, name="preview"),
    path("p/<slug:slug>/documents/<int:pk>/delete", views.document_delete, name="delete"),
]
