"""Statements of enrollment (`runtime.enrollment`) and the contact pause rule.

Why hand-written: Django spends about a millisecond compiling and adapting each ORM statement on the
measured machine, several times what PostgreSQL spends running it (README, "Performance"). An enrollment
is three statements: its lock, one read of everything the rules need (`STANDING`: the automation's status
and root, the pause that applies, the contact's prior runs) and one insert that also bumps the
automation's counter (`INSERT_*_RUN`, `ON CONFLICT` on the live-run index).

The pause rule lives here once, as `PAUSE_APPLIES`: enrollment's `STANDING` and the runner's pause lookup
(`PAUSES`, through `applying_pauses` / `active_pause`) are both built from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from automations.models import LIVE_RUN_STATUSES, Automation, AutomationRun, EnrollBlocked, RunStatus
from automations.store.base import (
    column,
    execute,
    fetch,
    fetch_one,
    insert_columns,
    insert_params,
    insert_placeholders,
    instance_from,
    literal_list,
    prefixed_list,
    statement,
)
from contacts.models import Contact, ContactAutomationControl, ContactIdentity, Conversation, SocialAccount

# Rows that record a skipped enrollment: never a "prior run" for re-entry purposes.
SKIP_REASONS = tuple(blocked.skip_reason for blocked in EnrollBlocked if blocked.skip_reason)

# -- the pause rule ---------------------------------------------------------------------------------

# A pause row applies to (contact, automation) when it is global (automation NULL) or names that
# automation, and it has no end (until resumed) or its end is still ahead. Columns unqualified: the
# fragment is used inside a FROM of the pause table alone.
PAUSE_APPLIES = statement(
    """{pause.contact} = %(contact)s
       AND ({pause.automation} IS NULL OR {pause.automation} = %(automation)s)
       AND ({pause.paused_until} IS NULL OR {pause.paused_until} > %(now)s)""",
    pause=ContactAutomationControl,
)
# Global first, then the oldest: the row that is reported as the reason.
PAUSE_ORDER = statement("{pause.automation} ASC NULLS FIRST, {pause.created_at} ASC", pause=ContactAutomationControl)

PAUSES = statement(
    """SELECT {pause.id} AS id, {pause.automation} AS automation_id, {pause.pause_reason} AS pause_reason,
              {pause.paused_until} AS paused_until
       FROM {pause} WHERE {applies} ORDER BY {order}""",
    pause=ContactAutomationControl, applies=PAUSE_APPLIES, order=PAUSE_ORDER,
)


@dataclass(frozen=True)
class Pause:
    """A pause row that applies (see `PAUSE_APPLIES`)."""

    id: str
    automation_id: str | None  # None: every automation
    pause_reason: str
    paused_until: datetime | None  # None: until resumed


def applying_pauses(contact_id: str, automation_id: str, now: datetime) -> list[Pause]:
    """The pause rows that keep `automation_id` away from `contact_id` at `now`, global first."""
    return [Pause(**row) for row in fetch(PAUSES, {"contact": contact_id, "automation": automation_id, "now": now})]


def active_pause(contact_id: str, automation_id: str, now: datetime) -> Pause | None:
    """The pause row that keeps this automation away from this contact (global first), or None."""
    pauses = applying_pauses(contact_id, automation_id, now)
    return pauses[0] if pauses else None


# -- standing: what an enrollment decides on ---------------------------------------------------------

_PRIOR_RUN = statement(
    """SELECT 1 FROM {run} r WHERE r.{run.automation} = a.{automation.id} AND r.{run.contact} = %(contact)s
       AND NOT (r.{run.status} = '{exited}' AND COALESCE(r.{run.exit_reason}, '') IN ({skips}))""",
    run=AutomationRun, automation=Automation, exited=RunStatus.EXITED, skips=literal_list(SKIP_REASONS),
)

STANDING = statement(
    """SELECT a.{automation.status} AS status, a.{automation.graph} ->> 'root_node_key' AS root_node_key,
              p.id AS pause_id, p.id IS NOT NULL AND p.automation_id IS NULL AS pause_global,
              p.paused_until AS paused_until,
              EXISTS ({prior} AND r.{run.status} IN ({live})) AS prior_live,
              EXISTS ({prior}) AS prior_any,
              EXISTS ({prior} AND r.{run.status} = '{completed}' AND r.{run.completed_at} > %(since)s)
                  AS prior_recently_completed
       FROM {automation} a
       LEFT JOIN LATERAL (
           SELECT {pause.id} AS id, {pause.automation} AS automation_id, {pause.paused_until} AS paused_until
           FROM {pause} WHERE {applies} ORDER BY {order} LIMIT 1) p ON TRUE
       WHERE a.{automation.id} = %(automation)s""",
    automation=Automation, run=AutomationRun, pause=ContactAutomationControl, prior=_PRIOR_RUN,
    live=literal_list(LIVE_RUN_STATUSES), completed=RunStatus.COMPLETED, applies=PAUSE_APPLIES, order=PAUSE_ORDER,
)


@dataclass(frozen=True)
class PriorRuns:
    """A contact's earlier runs of one automation (skip rows aside), as far as re-entry cares."""

    live: bool  # created / active / waiting
    any: bool
    recently_completed: bool  # completed after the `since` the standing was read with


NO_PRIOR_RUNS = PriorRuns(live=False, any=False, recently_completed=False)


@dataclass(frozen=True)
class Standing:
    """What `enroll` reads in one statement under its lock."""

    status: str | None  # the automation's, None if it is gone
    root_node_key: str | None
    pause_id: str | None  # the pause row that applies (global first), if any
    pause_global: bool  # that row pauses every automation
    paused_until: datetime | None
    prior: PriorRuns


def standing(automation_id: str, contact_id: str, now: datetime, since: datetime) -> Standing:
    """The automation's status and root, the pause that applies at `now` and the contact's prior runs
    (`recently_completed`: after `since`), read at one instant."""
    row = fetch_one(STANDING, {"automation": automation_id, "contact": contact_id, "now": now, "since": since})
    if row is None:
        return Standing(None, None, None, False, None, NO_PRIOR_RUNS)
    return Standing(status=row["status"], root_node_key=row["root_node_key"], pause_id=row["pause_id"],
                    pause_global=row["pause_global"], paused_until=row["paused_until"],
                    prior=PriorRuns(live=row["prior_live"], any=row["prior_any"],
                                    recently_completed=row["prior_recently_completed"]))


# -- the enrollment lock and the run insert ------------------------------------------------------------

LOCK_ENROLLMENT = "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))"


def lock_enrollment(automation_id: str, contact_id: str) -> None:
    """Take the (automation, contact) decision lock until the current transaction ends (see
    `runtime.enrollment.enroll`)."""
    execute(LOCK_ENROLLMENT, {"key": f"enroll:{automation_id}:{contact_id}"})


# The conflict target is the live-run index (its columns and predicate): any other unique violation
# still raises. The counter moves only when the run was inserted.
_INSERT_RUN_TEMPLATE = """WITH inserted AS (
        INSERT INTO {run} ({columns}) VALUES ({values})
        ON CONFLICT ({run.contact}, {run.automation}) WHERE {run.status} IN ({live}) DO NOTHING RETURNING 1),
    counted AS (
        UPDATE {automation} SET {counter} = {counter} + 1
        WHERE {automation.id} = %(r_automation_id)s AND EXISTS (SELECT 1 FROM inserted))
    SELECT EXISTS (SELECT 1 FROM inserted) AS inserted"""


def _insert_run(counter: str) -> str:
    return statement(_INSERT_RUN_TEMPLATE, run=AutomationRun, automation=Automation,
                     counter=column(Automation, counter), columns=insert_columns(AutomationRun),
                     values=insert_placeholders(AutomationRun, "r_"),
                     live=literal_list(LIVE_RUN_STATUSES))


INSERT_ENROLLED_RUN = _insert_run("total_enrolled")  # a new run
INSERT_EXITED_RUN = _insert_run("total_exited")  # a row recording a skipped enrollment
_INSERT_RUN_COUNTING = {"total_enrolled": INSERT_ENROLLED_RUN, "total_exited": INSERT_EXITED_RUN}


def insert_run(run: AutomationRun, counter: str) -> bool:
    """Insert `run` and bump the automation's `counter` (`total_enrolled` or `total_exited`) in one
    statement; False (nothing written) when the contact already has a live run of the automation."""
    row = fetch_one(_INSERT_RUN_COUNTING[counter], insert_params(run, "r_"))
    if row["inserted"]:
        run._state.adding = False
        run._state.db = connection.alias
    return row["inserted"]


# -- a schedule trigger's audience --------------------------------------------------------------------

def _on_channel(link) -> str:
    """A contact (`c`) reachable on the channel through `link` (its identities or its conversations): on
    one of the channel's accounts, or on `account` when it is given."""
    return statement(
        """SELECT 1 FROM {link} l JOIN {account} sa ON sa.{account.id} = l.{link.social_account}
           WHERE l.{link.contact} = c.{contact.id} AND sa.{account.channel} = %(channel)s
           AND (%(account)s::text IS NULL OR sa.{account.id} = %(account)s)""",
        link=link, account=SocialAccount, contact=Contact,
    )


# The next batch of the organization's contacts after the cursor, in id order, reachable on the channel and
# carrying, for every requirement (a JSON array of tag alternatives), one of its tags. Tags compare trimmed
# and case-insensitively, as the filters do (the filters still decide per contact).
AUDIENCE_BATCH = statement(
    """SELECT {contact_list} FROM {contact} c
       WHERE c.{contact.organization} = %(organization)s AND c.{contact.id} > %(after)s
       AND (EXISTS ({on_identity}) OR EXISTS ({on_conversation}))
       AND NOT EXISTS (
           SELECT 1 FROM jsonb_array_elements(%(requirements)s::jsonb) required
           WHERE NOT EXISTS (SELECT 1 FROM unnest(c.{contact.tags}) tag
                             WHERE lower(btrim(tag)) IN (SELECT jsonb_array_elements_text(required))))
       ORDER BY c.{contact.id} ASC LIMIT %(limit)s""",
    contact=Contact, contact_list=prefixed_list(Contact, "c", "c"),
    on_identity=_on_channel(ContactIdentity), on_conversation=_on_channel(Conversation),
)


def audience_batch(organization_id: str, channel: str, account_id: str | None, requirements: list[list[str]],
                   after: str | None, limit: int) -> list[Contact]:
    """Up to `limit` contacts of the organization after id `after`, in id order, reachable on `channel`
    (through `account_id` when given) and carrying one tag of each of `requirements` (lower-cased, trimmed)."""
    rows = fetch(AUDIENCE_BATCH, {"organization": organization_id, "channel": channel, "account": account_id,
                                  "requirements": json.dumps(requirements), "after": after or "", "limit": limit})
    return [instance_from(Contact, row, "c") for row in rows]
