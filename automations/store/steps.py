"""Statements on `automation_step_runs`: the step rows a run write carries.

Why hand-written: an advance writes all its step rows with the run in one statement (`runtime.hooks`);
Django's bulk_create would be a statement of its own and costs about a millisecond to compile and adapt
on the measured machine (README, "Performance"). The rows travel as one JSON array.
"""

from __future__ import annotations

from automations.models import StepRun
from automations.store.base import AFTER, column_list, statement

# Every column the ORM would insert (tests/core/test_sql.py checks), in the order the runner builds rows.
STEP_COLUMNS = ("run_id", "automation_id", "node_key", "node_kind", "entered_via_port_key", "exited_via_port_key",
                "outcome", "duration_ms", "payload", "error", "executed_at")

INSERT_STEPS = statement(
    """INSERT INTO {step} ({columns}) SELECT {columns}
       FROM jsonb_populate_recordset(NULL::{step}, %(rows)s::jsonb) WHERE {after}""",
    step=StepRun, columns=column_list(StepRun, STEP_COLUMNS), after=AFTER,
)
