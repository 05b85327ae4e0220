from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "workbench.documents"
    verbose_name = "Documents"
