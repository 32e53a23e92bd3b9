"""Statements on `automation_runs` (and the rows read or written with a run in the same round trip).

Why hand-written: Django spends about a millisecond compiling and adapting each ORM statement on the
measured machine, several times what PostgreSQL spends running it (README, "Performance"); an advance
is two statements, one read and one write (`runtime.hooks` composes the write from these and the other
store modules' statements).
"""

from __future__ import annotations

from functools import lru_cache

from automations.models import Automation, AutomationRun, RunStatus
from automations.store.base import AFTER, column, statement

# -- reading a run ---------------------------------------------------------------------------------
# (LOAD_RUN and what it decodes into)


# -- writing a run ---------------------------------------------------------------------------------
# (the optimistic run write and what is written with it)

# The optimistic run write: the changed columns are set iff the row is still as it was read.
UPDATE_RUN_TEMPLATE = statement(
    """UPDATE {run} SET {assignments} WHERE {run.id} = %(id)s AND {run.updated_at} = %(seen)s""",
    run=AutomationRun, assignments="{assignments}",
)


@lru_cache(maxsize=128)
def update_run(fields: tuple[str, ...]) -> str:
    """`UPDATE_RUN_TEMPLATE` setting `fields` (model field names), each from the parameter `set_<field>`."""
    return UPDATE_RUN_TEMPLATE.replace("{assignments}", ", ".join(
        f"{column(AutomationRun, name)} = %(set_{name})s" for name in fields))


# The automation's counter for a run that ended `status` (completed, exited or failed): written last of
# a run write (see runtime.hooks), as every run of the automation writes this row.
COUNT_FINISHED = statement(
    """UPDATE {automation} SET
           {automation.total_completed} = {automation.total_completed} + (%(status)s::text = '{completed}')::int,
           {automation.total_exited} = {automation.total_exited} + (%(status)s::text = '{exited}')::int,
           {automation.total_failed} = {automation.total_failed} + (%(status)s::text = '{failed}')::int
       WHERE {automation.id} = %(automation)s AND {after}""",
    automation=Automation, completed=str(RunStatus.COMPLETED), exited=str(RunStatus.EXITED),
    failed=str(RunStatus.FAILED), after=AFTER,
)
