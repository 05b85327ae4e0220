from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "workbench.exports"
    verbose_name = "Exports"
