from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "workbench.review"
    verbose_name = "Review"
