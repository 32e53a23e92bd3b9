"""gunicorn settings module (`gunicorn --config python:relay.observability.gunicorn …`): with
PROMETHEUS_MULTIPROC_DIR set, the master prepares the metrics directory at start and folds in the
files of each worker it reaps, so worker restarts neither lose counts nor pile up files."""

from relay.observability import metrics


def on_starting(server):
    metrics.prepare_directory()


def child_exit(server, worker):
    directory = metrics.multiprocess_dir()
    if directory:
        metrics.compact(directory, dead_pids={worker.pid})
