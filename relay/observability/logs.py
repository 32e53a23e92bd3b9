"""Log context: the request id, organization id and run id a line belongs to, wherever it is logged.

The ids live in contextvars: the request middleware sets the request id (and resets all three when the
request ends), API-key authentication the organization, the runner the run, and a Celery task the
request id its message carried. A log record factory copies them onto every record when it is created,
so any handler (ours, pytest's, Sentry's breadcrumbs) sees them. `LOG_FORMAT=json` prints one JSON
object per line; the default text format prints the same fields in a fixed order.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("relay_request_id", default=None)
ORGANIZATION_ID: ContextVar[str | None] = ContextVar("relay_organization_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("relay_run_id", default=None)
CONTEXT_FIELDS = (("request_id", REQUEST_ID), ("organization_id", ORGANIZATION_ID), ("run_id", RUN_ID))

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 128
# What tracing systems send (UUIDs, hex, AWS-style `Root=1-…`): anything else is replaced, never logged.
_REQUEST_ID = re.compile(rf"^[A-Za-z0-9._:=/+-]{{1,{REQUEST_ID_MAX_LENGTH}}}$")


def valid_request_id(value) -> str | None:
    """`value` if it is a plausible request id (short, printable, no spaces), else None."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str) and _REQUEST_ID.match(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bound(**values):
    """Set some of request_id / organization_id / run_id for a block and restore them after it."""
    tokens = [(var, var.set(values[name])) for name, var in CONTEXT_FIELDS if name in values]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def clear() -> None:
    for _, var in CONTEXT_FIELDS:
        var.set(None)


def clear_on_request_finished(**kwargs) -> None:
    """The request's ids end with its response (after Django's own 4xx/5xx log line)."""
    clear()


_base_factory = None


def install_record_factory() -> None:
    """Stamp the context ids onto every log record (idempotent)."""
    global _base_factory
    if _base_factory is not None:
        return
    _base_factory = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = _base_factory(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        record.organization_id = ORGANIZATION_ID.get()
        record.run_id = RUN_ID.get()
        return record

    logging.setLogRecordFactory(factory)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z INFO logger.name [request_id=… run_id=…] message`"""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{name}={value}" for name, _ in CONTEXT_FIELDS
                           if (value := getattr(record, name, None)))
        line = f"{_timestamp(record)} {record.levelname} {record.name} "
        line += f"[{context}] " if context else ""
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids known, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _timestamp(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        for name, _ in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class QuietRoutineTicks(logging.Filter):
    """Drop the lines Celery writes for every scheduler tick (beat sending it, the worker receiving it and
    reporting its result) unless DEBUG logging is on: at the default interval they were most of the log.
    The tick itself logs at INFO when it did something and at WARNING when something failed."""

    def __init__(self, task_name: str = "automations.tasks.scheduler_tick"):
        super().__init__()
        self.task_name = task_name

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery"):
            return True
        args = record.args
        if isinstance(args, dict):
            mentioned = args.get("name") == self.task_name
        else:
            mentioned = isinstance(args, tuple) and self.task_name in args
        return not mentioned or logging.getLogger().isEnabledFor(logging.DEBUG)
