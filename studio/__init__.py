"""Castboard's production domain; what runs the site is in studio.project.

The Celery app is exposed here so that `celery -A studio` finds it.
"""

from studio.project.celery import app as celery_app

__all__ = ("celery_app",)
