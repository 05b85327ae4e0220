from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "workbench.review"
    verbose_name = "Review"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from workbench.review.services import leases_release_on_logout

        user_logged_out.connect(leases_release_on_logout, dispatch_uid="review-leases-release-on-logout")
