"""Statements on `automation_scheduled_jobs`."""

from __future__ import annotations

# -- claiming due jobs -----------------------------------------------------------------------------
# (the scheduler's claim)


# -- jobs written with a run -----------------------------------------------------------------------
# (cancelling a wait's jobs, finishing the claimed job, scheduling a new one)
