"""The database check behind /healthz and /readyz.

Why hand-written: `SELECT 1` is the cheapest statement that proves the database answers, and a health
check has no model to ask the ORM about; load balancers call it every few seconds.
"""

from __future__ import annotations

from automations.store.base import fetch_one

PING = "SELECT 1 AS ok"


def ping() -> None:
    """Return once the database answered; raise if it did not."""
    fetch_one(PING)
