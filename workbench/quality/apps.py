from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "workbench.quality"
    verbose_name = "Quality"
