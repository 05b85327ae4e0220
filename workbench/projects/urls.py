from django.urls import path

from workbench.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("p/<slug:slug>/", views.project_detail, name="detail"),
]
