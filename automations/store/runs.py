"""Statements on `automation_runs` (and the rows read or written with a run in the same round trip)."""

from __future__ import annotations

# -- reading a run ---------------------------------------------------------------------------------
# (LOAD_RUN and what it decodes into)


# -- writing a run ---------------------------------------------------------------------------------
# (the optimistic run write and what is written with it)
