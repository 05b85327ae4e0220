"""Genstruct Workbench: the Django project and its domain apps."""

from workbench.celery import app as celery_app

__all__ = ["celery_app"]
