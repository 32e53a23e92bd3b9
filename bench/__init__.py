"""Relay's benchmarks (`./relayctl bench`, i.e. `python -m bench`): the PostgreSQL ceiling, the runner
directly and through a real Celery worker, inbound events through the API, and the scheduler tick —
each against its own freshly migrated database, printed as a table and written to
bench/results/latest.json."""
