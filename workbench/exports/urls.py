from django.urls import path

from workbench.exports import views

app_name = "exports"
urlpatterns = [
    path("p/<slug:slug>/exports/", views.export_list, name="list"),
    path("p/<slug:slug>/exports/start", views.export_start, name="start"),
    path("p/<slug:slug>/exports/<int:pk>.json", views.export_status, name="status"),
    path("p/<slug:slug>/exports/<int:pk>/<str:name>", views.export_download, name="download"),
]
