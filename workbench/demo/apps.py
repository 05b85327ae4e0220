from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "workbench.demo"
    verbose_name = "Single-machine start"
