"""Statements on `automation_runs` (and the rows read or written with a run in the same round trip).

Why hand-written: on the measured machine Django spends about a millisecond compiling and adapting each
ORM statement, several times what PostgreSQL spends running it (README, "Performance"), and an advance used
to issue nine of them. Now an advance is two statements: `LOAD_RUN` (the run, its automation, contact,
account and conversation, and the hints the walk needs, read at one instant) and the run write
(`runtime.runs.write_run`, which `runtime.hooks` composes from `UPDATE_RUN_TEMPLATE` and the other store
modules' statements).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from automations.models import (
    CONTACT_CHANGE_KINDS,
    ActiveStatus,
    Automation,
    AutomationRun,
    AutomationStatus,
    Entrypoint,
    JobStatus,
    RunStatus,
    ScheduledJob,
    StepOutcome,
    StepRun,
)
from automations.store.base import (
    AFTER,
    column,
    fetch_one,
    instance_from,
    literal_list,
    prefixed_list,
    statement,
)
from automations.store.jobs import Claim
from contacts.models import Contact, ContactAutomationControl, Conversation, SocialAccount

# -- reading a run ---------------------------------------------------------------------------------

# The models read with a run, each under its prefix: the run, then its relations (LEFT JOIN: absent → None).
_READ_WITH_RUN = {"r": AutomationRun, "a": Automation, "c": Contact, "sa": SocialAccount, "cv": Conversation}

# The run with its relations and three hints read at the same instant: whether the contact has any pause
# rows at all, whether anything in the organization listens for tag/field changes, and (for a waiting run)
# the port its wait was entered through (its latest `waiting` step row at the node). {held} is empty, or
# whether the scheduler's claimed job is still ours (`LOAD_RUN_HOLDING_JOB`).
_LOAD_RUN_TEMPLATE = """SELECT {columns},
       EXISTS (SELECT 1 FROM {pause} p WHERE p.{pause.contact} = r.{run.contact}) AS has_pause_rows,
       EXISTS (SELECT 1 FROM {entrypoint} e JOIN {automation} ea ON ea.{automation.id} = e.{entrypoint.automation}
               WHERE e.{entrypoint.organization} = r.{run.organization} AND e.{entrypoint.kind} IN ({change_kinds})
               AND e.{entrypoint.status} = '{entrypoint_active}' AND ea.{automation.status} = '{automation_active}'
       ) AS has_change_listeners,
       CASE WHEN r.{run.status} = '{waiting}' THEN (
           SELECT s.{step.entered_via_port_key} FROM {step} s
           WHERE s.{step.run} = r.{run.id} AND s.{step.node_key} = r.{run.current_node_key}
           AND s.{step.outcome} = '{step_waiting}' ORDER BY s.{step.executed_at} DESC, s.{step.id} DESC LIMIT 1
       ) END AS entry_port{held}
    FROM {run} r
    LEFT JOIN {automation} a ON a.{automation.id} = r.{run.automation}
    LEFT JOIN {contact} c ON c.{contact.id} = r.{run.contact}
    LEFT JOIN {account} sa ON sa.{account.id} = r.{run.social_account}
    LEFT JOIN {conversation} cv ON cv.{conversation.id} = r.{run.conversation}
    WHERE r.{run.id} = %(run)s"""

_JOB_HELD = statement(
    """, EXISTS (SELECT 1 FROM {job} j WHERE j.{job.id} = %(job)s AND j.{job.status} = '{pending}'
                 AND j.{job.due_at} = %(lease)s) AS job_held""",
    job=ScheduledJob, pending=JobStatus.PENDING,
)


def _load_run(held: str) -> str:
    return statement(
        _LOAD_RUN_TEMPLATE, held=held,
        columns=", ".join(prefixed_list(model, prefix, prefix) for prefix, model in _READ_WITH_RUN.items()),
        run=AutomationRun, automation=Automation, contact=Contact, account=SocialAccount, conversation=Conversation,
        pause=ContactAutomationControl, entrypoint=Entrypoint, step=StepRun,
        change_kinds=literal_list(CONTACT_CHANGE_KINDS), entrypoint_active=ActiveStatus.ACTIVE,
        automation_active=AutomationStatus.ACTIVE, waiting=RunStatus.WAITING, step_waiting=StepOutcome.WAITING,
    )


LOAD_RUN = _load_run("")
LOAD_RUN_HOLDING_JOB = _load_run(_JOB_HELD)


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A run as an advance or a resume reads it (`read_run`), with the hints read at the same instant.

    The relations (automation, contact, account, conversation — cached on `run`) and the hints describe
    the run as read: they are `fresh` until the first execute takes them (`take`) or the run is written,
    so a LoadedRun kept around never walks on old data. `LoadedRun.unread(run)` wraps a run read
    elsewhere: nothing is fresh, everything is read when needed. `job_held` (None without a claim): the
    scheduler's claimed job was still pending under our lease when the run was read."""

    run: AutomationRun
    has_pause_rows: bool | None = None
    has_change_listeners: bool | None = None
    entry_port: str | None = None  # the port the waiting run's wait was entered through
    job_held: bool | None = None
    read_as: tuple[datetime, str] | None = None  # (updated_at, current_node_key) as read; None: not read here
    _taken: list = field(default_factory=list, repr=False)  # not empty once an execute took the hints

    @classmethod
    def unread(cls, run: AutomationRun) -> LoadedRun:
        """`run` as read elsewhere (a queryset, an earlier execute): its relations must be read again."""
        return cls(run)

    @property
    def fresh(self) -> bool:
        """The relations and hints still describe the run: read with it, not yet taken, run unchanged since."""
        return (self.read_as is not None and not self._taken
                and self.read_as == (self.run.updated_at, self.run.current_node_key))

    def take(self) -> bool:
        """`fresh`, answered once: an execute walks on the hints, and nothing after it may."""
        fresh = self.fresh
        self._taken.append(True)
        return fresh


def read_run(run_id: str, held_job: Claim | None = None) -> LoadedRun | None:
    """The run by id with its relations and hints, in ONE statement (`LOAD_RUN`); with `held_job` (a
    scheduler claim) the same statement tells whether that job is still ours (`job_held`). None: no
    such run."""
    if held_job is None:
        row = fetch_one(LOAD_RUN, {"run": run_id})
    else:
        row = fetch_one(LOAD_RUN_HOLDING_JOB, {"run": run_id, "job": held_job.id, "lease": held_job.lease})
    if row is None:
        return None
    run = instance_from(AutomationRun, row, "r")
    for prefix, name in (("a", "automation"), ("c", "contact"), ("sa", "social_account"), ("cv", "conversation")):
        AutomationRun._meta.get_field(name).set_cached_value(run, instance_from(_READ_WITH_RUN[prefix], row, prefix))
    return LoadedRun(run, has_pause_rows=row["has_pause_rows"], has_change_listeners=row["has_change_listeners"],
                     entry_port=row["entry_port"], job_held=row.get("job_held"),
                     read_as=(run.updated_at, run.current_node_key))


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


# -- the one statement of a run write ---------------------------------------------------------------

_PARAMETER = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=256)
def write_statement(run_sql: str, phases: tuple[tuple[str, str], ...]) -> str:
    """The one statement: `w_run` (the run's UPDATE), then one CTE per (name, statement) of `phases`, in
    the order given, each gated on every CTE before it (`runtime.hooks` says why `max`). Parameters are
    prefixed with the CTE's name (`%(status)s` of w_jobs is `%(w_jobs_status)s`), so any statements
    compose."""
    run_id = "%(w_run_id)s::text"
    parts = [f"WITH w_run AS ({_prefixed(run_sql, 'w_run')} RETURNING {column(AutomationRun, 'id')} AS run_id)"]
    before = ["w_run"]
    for name, sql in phases:
        written = " UNION ALL ".join(f"SELECT run_id FROM {earlier}" for earlier in before)
        gate = f"{run_id} = (SELECT max(run_id) FROM ({written}) AS {name}_after)"
        parts.append(f"{name} AS ({_prefixed(sql, name).replace(AFTER, gate)} RETURNING {run_id} AS run_id)")
        before.append(name)
    return ", ".join(parts) + " SELECT count(*) AS written FROM w_run"


def write_with_phases(run_sql: str, run_params: dict, phases: list[tuple[str, str, dict]]) -> bool:
    """Run the run write `run_sql` with the (CTE name, statement, parameters) `phases` riding on it, in
    one statement; False: the run write lost, and nothing was written."""
    params = {f"w_run_{name}": value for name, value in run_params.items()}
    for name, _, values in phases:
        params.update({f"{name}_{key}": value for key, value in values.items()})
    row = fetch_one(write_statement(run_sql, tuple((name, sql) for name, sql, _ in phases)), params)
    return row["written"] > 0


def _prefixed(sql: str, name: str) -> str:
    return _PARAMETER.sub(lambda match: f"%({name}_{match.group(1)})s", sql)
