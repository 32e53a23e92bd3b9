"""Helpers shared by the test packages: racing threads against the database, and counting the statements a
block of code runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection
from django.test.utils import CaptureQueriesContext

TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")


def race(n: int, fn: Callable[[int], object], timeout: float = 120) -> list:
    """Call `fn(i)` for i in range(n), each in its own thread, all released at once by a barrier: what two
    workers (or fifty deliveries) doing the same thing at the same moment look like. Each thread has its own
    database connection (Django's are per thread), closed when it ends so none outlives the test database.
    Returns the results in the order of i; re-raises the first error a thread raised, and fails when a
    thread is still running after `timeout` seconds."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread still runs after {timeout}s"
    if errors:
        errors[0].add_note(f"{len(errors)} of the {n} threads raised; this is the first")
        raise errors[0]
    return results


@contextmanager
def captured_statements(transaction_control: bool = True) -> Iterator[list[str]]:
    """The SQL the block ran on Django's connection, in order (the list is filled when the block ends);
    without SAVEPOINT/RELEASE/BEGIN/COMMIT when `transaction_control` is false."""
    statements: list[str] = []
    with CaptureQueriesContext(connection) as captured:
        yield statements
    statements.extend(query["sql"] for query in captured.captured_queries
                      if transaction_control or not query["sql"].startswith(TRANSACTION_CONTROL))


@contextmanager
def assert_statements(count: int, transaction_control: bool = True) -> Iterator[list[str]]:
    """Fail unless the block ran exactly `count` statements (listed in the failure); yields them, as
    `captured_statements` does, for assertions about which ones ran."""
    with captured_statements(transaction_control) as statements:
        yield statements
    assert len(statements) == count, "\n".join(
        [f"{len(statements)} statements ran, not {count}:", *(f"{i}. {sql}" for i, sql in enumerate(statements, 1))])
