"""What operators look at: structured logs with request/run context, Prometheus metrics, readiness, Sentry.

logs.py       context (request id, organization id, run id) carried into every log line; text or JSON
metrics.py    the `relay_` metrics, the scrape registry, multiprocess files and their compaction
readiness.py  the checks behind /readyz
sentry.py     error reporting when SENTRY_DSN is set
worker.py     Celery: request id into the tasks a request enqueues, worker logging, children's metrics files
gunicorn.py   gunicorn hooks (`--config python:relay.observability.gunicorn`) for the metrics directory
"""
