from django.urls import path

from workbench.quality import views

app_name = "quality"
urlpatterns = [
    path("p/<slug:slug>/quality/", views.quality_page, name="page"),
    path("p/<slug:slug>/quality/job.json", views.scoring_job_json, name="job"),
    path("p/<slug:slug>/quality/rescore", views.rescore, name="rescore"),
]
