from django.urls import path

from workbench.review import audit_views, members, views

app_name = "review"
urlpatterns = [
    path("p/<slug:slug>/review/", views.queue, name="queue"),
    path("p/<slug:slug>/review/<int:pk>/decide", views.decide, name="decide"),
    path("p/<slug:slug>/review/undo", views.undo, name="undo"),
    path("p/<slug:slug>/review/next", views.next_pair, name="next"),
    path("p/<slug:slug>/pairs/", views.pair_browser, name="pairs"),
    path("p/<slug:slug>/pairs/bulk-reject", views.bulk_reject, name="bulk_reject"),
    path("p/<slug:slug>/pairs/bulk/<int:pk>/undo", views.bulk_undo, name="bulk_undo"),
    path("p/<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path("p/<slug:slug>/audit/", audit_views.overview, name="audit"),
    path("p/<slug:slug>/audit/start", audit_views.start, name="audit_start"),
    path("p/<slug:slug>/audit/queue", audit_views.audit_queue, name="audit_queue"),
    path("p/<slug:slug>/audit/<int:item_id>/verdict", audit_views.verdict, name="audit_verdict"),
]
urlpatterns += [
    path("p/<slug:slug>/members/", members.members, name="members"),
    path("p/<slug:slug>/pairs/<int:pk>/", views.pair_page, name="pair"),
]
