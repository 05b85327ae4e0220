from django.urls import path

from workbench.generation import views

app_name = "generation"
urlpatterns = [
    path("p/<slug:slug>/runs/", views.run_list, name="list"),
    path("p/<slug:slug>/runs/start", views.run_start, name="start"),
    path("p/<slug:slug>/runs/<int:pk>/", views.run_detail, name="detail"),
    path("p/<slug:slug>/runs/<int:pk>/progress.json", views.run_progress_json, name="progress"),
    path("p/<slug:slug>/runs/<int:pk>/cancel", views.run_cancel, name="cancel"),
    path("p/<slug:slug>/runs/<int:pk>/retry", views.run_retry, name="retry"),
]
