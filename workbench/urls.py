from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workbench.auth import PasswordResetForm
from workbench.projects.views import healthz

admin.site.site_header = "Genstruct Workbench administration"
admin.site.site_title = "Genstruct Workbench"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Accounts without the admin: reviewers change their own password; a reset link goes by e-mail (EMAIL_* settings;
    # the console backend prints it to the web process's log by default).
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "accounts/reset/",
        auth_views.PasswordResetView.as_view(
            form_class=PasswordResetForm, email_template_name="registration/password_reset_email.txt"
        ),
        name="password_reset",
    ),
    path("accounts/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("healthz", healthz, name="healthz"),
    path("api/", include("workbench.api_urls")),
    path("", include("workbench.projects.urls")),
    path("", include("workbench.documents.urls")),
    path("", include("workbench.generation.urls")),
    path("", include("workbench.quality.urls")),
    path("", include("workbench.review.urls")),
    path("", include("workbench.exports.urls")),
]

handler400 = "workbench.projects.api_errors.bad_request"
handler404 = "workbench.projects.api_errors.not_found"
handler500 = "workbench.projects.api_errors.server_error"
