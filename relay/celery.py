"""The Celery app. Tasks live in `automations.tasks`; the beat schedule lives in the database."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay.settings")

app = Celery("relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import relay.observability.worker  # noqa: E402,F401 - connects the request-id, logging and metrics signals


@signals.task_prerun.connect
@signals.task_postrun.connect
def recycle_database_connections(task=None, **kwargs):
    """Between tasks, what Django does between requests: drop a connection that broke or outlived
    CONN_MAX_AGE, keep a healthy one. (Celery's Django fixup would otherwise close it around every task
    — a new PostgreSQL backend and its prepared statements thrown away per run; `CELERY_DB_REUSE_MAX`
    in the settings limits that to one recycle per so many tasks.) Eager tasks run inside the caller's
    connection and transaction: left alone."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
