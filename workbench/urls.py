from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workbench.projects.views import healthz

admin.site.site_header = "Genstruct Workbench administration"
admin.site.site_title = "Genstruct Workbench"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("api/", include("workbench.api_urls")),
    path("", include("workbench.projects.urls")),
    path("", include("workbench.documents.urls")),
    path("", include("workbench.generation.urls")),
    path("", include("workbench.quality.urls")),
    path("", include("workbench.review.urls")),
    path("", include("workbench.exports.urls")),
]
