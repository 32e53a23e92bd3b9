"""What a run write carries, and the order it is written in.

A persist writes the run row and, with it, rows of other tables: the wait's jobs, outbox messages, the
contact's tags and fields, step rows and the automation's counter. Every such write is a `Rows` hook —
a store statement and its parameters, tagged with its `WritePhase` — and the phases are the order rows
are locked in: run, jobs, messages, contact, steps, and the automation's counter (a row every run of
the automation shares) last. Two persists that lock in one order cannot deadlock on each other.

`carry_out` writes the run and its `Rows` in ONE statement (`store.runs.write_with_phases`):
data-modifying CTEs named by phase (`w_run`, `w_jobs`, … `w_counter`). PostgreSQL documents the order of
a statement's sub-statements as unpredictable (it runs the ones nothing reads last-first), so the order
is made a data dependency: each CTE returns the run id, and each phase's condition is that the run id is
the largest id returned by the CTEs before it (`max` reads all of them, so every earlier phase has
finished its writes before this one starts). A lost run write returns nothing, so no phase writes
anything.

`AfterWrite` hooks are Python that runs once the run write won (in the persist's transaction: pauses,
enrollments, the contact-change announcement); `AfterCommit` hooks run after commit (outbox delivery,
resuming unparked runs, admin notices). The runner's transaction path (`apart_from`) writes the phases
from STEPS on with statements of their own after the hooks before them: start_automation completes its
step payload with the run it enrolled, so steps follow the operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from django.db import transaction

from automations.store import runs as runs_store
from automations.store.base import run_alone


class WritePhase(IntEnum):
    """The lock order of a run write's tables (see the module docstring)."""

    RUN = 0
    JOBS = 1
    MESSAGES = 2
    CONTACT = 3
    STEPS = 4
    COUNTER = 5


@dataclass(frozen=True)
class Rows:
    """A write that rides on the run write: a store statement whose condition holds the `AFTER` slot,
    and its named parameters — or a function returning them, called when the statement is about to run
    (step rows whose payloads an operation completes)."""

    phase: WritePhase
    sql: str
    params: dict | Callable[[], dict]

    def values(self) -> dict:
        return self.params() if callable(self.params) else self.params


@dataclass(frozen=True)
class AfterWrite:
    """Python to run once the run write won, in its transaction (if there is one)."""

    call: Callable[[], object]
    phase: WritePhase = WritePhase.CONTACT


@dataclass(frozen=True)
class AfterCommit:
    """Python to run after the run write's transaction commits (at once outside a transaction)."""

    call: Callable[[], object]
    phase: WritePhase = WritePhase.CONTACT


Hook = Rows | AfterWrite | AfterCommit


def plan(hooks: Iterable[Hook | None]) -> list[Hook]:
    """The hooks in phase order (None dropped); hooks of one phase keep the order they were given in."""
    return sorted((hook for hook in hooks if hook is not None), key=lambda hook: hook.phase)


def carry_out(run_sql: str, run_params: dict, hooks: Iterable[Hook | None], *,
              apart_from: WritePhase | None = None, on_won: Callable[[], object] | None = None) -> bool:
    """Write the run (`run_sql`: an UPDATE of one run row, conditions included) and the `Rows` hooks of
    phases before `apart_from` (all of them without it) in one statement; False if the run write lost
    (then nothing was written and no hook ran). Then `on_won`, then in phase order: `AfterWrite` hooks
    called, `AfterCommit` hooks handed to `transaction.on_commit`, the remaining `Rows` written one by
    one (`apart_from` is for a caller inside a transaction)."""
    ordered = plan(hooks)
    riding = [hook for hook in ordered
              if isinstance(hook, Rows) and (apart_from is None or hook.phase < apart_from)]
    phases = [(name, hook.sql, hook.values()) for name, hook in zip(_cte_names(riding), riding, strict=True)]
    if not runs_store.write_with_phases(run_sql, run_params, phases):
        return False
    if on_won is not None:
        on_won()
    _follow(hook for hook in ordered if not any(hook is ride for ride in riding))
    return True


def apply_alone(hooks: Iterable[Hook | None]) -> None:
    """Carry out hooks with no run write to ride on (the caller's own write already won, inside its
    transaction): each `Rows` is its own statement, in phase order with the rest."""
    _follow(plan(hooks))


def _follow(hooks: Iterable[Hook]) -> None:
    for hook in hooks:
        if isinstance(hook, Rows):
            run_alone(hook.sql, hook.values())
        elif isinstance(hook, AfterWrite):
            hook.call()
        else:
            transaction.on_commit(hook.call)


def _cte_names(rows: Sequence[Rows]) -> list[str]:
    """`w_<phase>` per Rows hook (`w_<phase>_2`, … for more in one phase)."""
    names, seen = [], {}
    for hook in rows:
        base = f"w_{hook.phase.name.lower()}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names
