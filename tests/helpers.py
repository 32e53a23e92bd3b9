"""Helpers shared by the test packages: racing threads against the database."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


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

