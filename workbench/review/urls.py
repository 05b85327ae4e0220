from django.urls import path

from workbench.review import views

app_name = "review"
urlpatterns = [
    path("p/<slug:slug>/review/", views.queue, name="queue"),
    path("p/<slug:slug>/review/<int:pk>/decide", views.decide, name="decide"),
    path("p/<slug:slug>/review/undo", views.undo, name="undo"),
    path("p/<slug:slug>/review/next", views.next_pair, name="next"),
    path("p/<slug:slug>/pairs/", views.pair_browser, name="pairs"),
    path("p/<slug:slug>/pairs/bulk-reject", views.bulk_reject, name="bulk_reject"),
    path("p/<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
]
