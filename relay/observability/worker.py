"""Celery wiring: the request id travels with the tasks a request enqueues; workers log like the web
process; prefork children leave their metrics files to be folded in when they exit.

Connected by importing this module (relay.celery does)."""

from __future__ import annotations

import logging.config
import os

from celery import signals

from relay.observability import logs, metrics

REQUEST_ID_HEADER = "relay_request_id"


@signals.before_task_publish.connect
def carry_request_id(headers=None, **kwargs):
    """Stamp the current request id onto the message (the producer side: a view, the tick, a task)."""
    request_id = logs.REQUEST_ID.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def bind_task_context(task=None, **kwargs):
    """A worker runs each task in the context its message carried: the request id, nothing else left
    over from the previous task. Eager tasks run inside their caller's context: left alone."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    logs.clear()
    request_id = logs.valid_request_id(getattr(task.request, REQUEST_ID_HEADER, None))
    if request_id:
        logs.REQUEST_ID.set(request_id)


@signals.task_postrun.connect
def clear_task_context(task=None, **kwargs):
    if task is None or getattr(task.request, "is_eager", False):
        return
    logs.clear()


@signals.setup_logging.connect
def use_django_logging(**kwargs):
    """Keep the LOGGING of the settings (formats, context ids, LOG_LEVEL) in workers and beat: with a
    receiver here Celery configures no handlers of its own (its --loglevel is then unused)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    logging.captureWarnings(True)  # Python warnings (Celery's, for one) as log lines in the same format


@signals.worker_init.connect
def prepare_metrics_directory(**kwargs):
    metrics.prepare_directory()


@signals.worker_process_shutdown.connect
def fold_in_metrics_of_exiting_child(pid=None, **kwargs):
    """A prefork child on its way out: its counters go into the archive files (it counts nothing more)."""
    directory = metrics.multiprocess_dir()
    if directory:
        metrics.compact(directory, dead_pids={pid or os.getpid()})
