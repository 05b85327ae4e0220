from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "workbench.generation"
    verbose_name = "Generation"
