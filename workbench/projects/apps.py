from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "workbench.projects"
    verbose_name = "Projects"
