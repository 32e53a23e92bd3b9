"""Contact pause rows (`automation_contact_controls`): create/update, delete, expire — and what each does to runs.

A pause row has a scope: one automation, or every automation (automation NULL). The same scope twice
updates the existing row. A row with `paused_until` gets a `pause_expiry` job; changing or deleting
the row cancels that job. Deleting (resume) or expiring a row resumes the runs the pause parked
(`waiting` / `external_event`) through `runtime.resume.resume_parked`, which itself refuses while
another pause still applies. The API views, action_group nodes and the scheduler all come through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from automations.models import (
    Automation,
    AutomationRun,
    JobKind,
    JobStatus,
    RunStatus,
    ScheduledJob,
    WaitingFor,
)
from contacts.models import Contact, ContactAutomationControl
from relay.core.errors import ApiError


@dataclass
class ResumeResult:
    deleted: ContactAutomationControl | None = None
    resumed_run_ids: list[str] = field(default_factory=list)


def controls_for(contact: Contact):
    return ContactAutomationControl.objects.filter(contact=contact)


def pause_contact(contact: Contact, *, automation: Automation | None = None, pause_reason: str = "",
                  paused_until: datetime | None = None, now: datetime | None = None
                  ) -> tuple[ContactAutomationControl, bool]:
    """Create or update the pause row for (contact, automation|global); return (row, created).

    Raises ApiError 422 `invalid_paused_until` when paused_until is not in the future."""
    now = now or timezone.now()
    if paused_until is not None and paused_until <= now:
        raise ApiError("invalid_paused_until", "paused_until must be in the future.", status=422,
                       details={"paused_until": ["must be in the future"]})
    for attempt in range(2):
        try:
            with transaction.atomic():
                control = (ContactAutomationControl.objects.select_for_update()
                           .filter(contact=contact, automation=automation).first())
                created = control is None
                if created:
                    control = ContactAutomationControl(organization_id=contact.organization_id, contact=contact,
                                                       automation=automation, created_at=now)
                control.pause_reason = pause_reason
                control.paused_until = paused_until
                control.save()
                _cancel_expiry_jobs(control)
                if paused_until is not None:
                    _schedule_expiry(control)
                return control, created
        except IntegrityError:
            if attempt:  # a concurrent request created the same scope twice in a row: give up loudly
                raise
    raise AssertionError("unreachable")


def resume_contact(contact: Contact, *, automation: Automation | None = None,
                   now: datetime | None = None) -> ResumeResult:
    """Delete the pause row for the scope (if any) and resume the runs it parked. Call it outside a
    transaction (or from transaction.on_commit): the resumed runs advance and commit on their own.

    Idempotent: with no row it still offers the scope's parked runs to `resume_parked` (a no-op for runs
    another pause still holds), which also repairs runs left parked by an interrupted expiry."""
    result = ResumeResult()
    with transaction.atomic():
        control = (ContactAutomationControl.objects.select_for_update()
                   .filter(contact=contact, automation=automation).first())
        if control is not None:
            _cancel_expiry_jobs(control)
            deleted_id = control.pk
            control.delete()
            control.pk = deleted_id  # keep the id for the response
            result.deleted = control
    # Outside the transaction: resuming advances runs, which commit their own steps.
    result.resumed_run_ids = resume_parked_runs(contact.pk, automation.pk if automation else None, now=now)
    return result


def expire_pause(payload: dict, *, now: datetime | None = None) -> ResumeResult:
    """The `pause_expiry` job: delete the row if it has expired, then resume the scope's parked runs.

    A row whose paused_until moved into the future is left alone (its own newer job will expire it).
    A row already deleted still gets its parked runs offered again, so a retried job finishes the work."""
    now = now or timezone.now()
    result = ResumeResult()
    contact_id = payload.get("contact_id")
    automation_id = payload.get("automation_id")
    with transaction.atomic():
        control = ContactAutomationControl.objects.select_for_update().filter(pk=payload.get("control_id")).first()
        if control is not None:
            if control.paused_until is None or control.paused_until > now:
                return result
            contact_id, automation_id = control.contact_id, control.automation_id
            deleted_id = control.pk
            control.delete()
            control.pk = deleted_id
            result.deleted = control
    if contact_id:
        result.resumed_run_ids = resume_parked_runs(contact_id, automation_id, now=now)
    return result


def parked_runs(contact_id: str, automation_id: str | None = None):
    """Runs a contact pause parked: waiting for `external_event` (global scope: in every automation)."""
    runs = AutomationRun.objects.filter(contact_id=contact_id, status=RunStatus.WAITING,
                                        waiting_for=WaitingFor.EXTERNAL_EVENT)
    if automation_id is not None:
        runs = runs.filter(automation_id=automation_id)
    return runs.order_by("started_at", "id")


def resume_parked_runs(contact_id: str, automation_id: str | None = None, *, now: datetime | None = None
                       ) -> list[str]:
    """Offer every run parked in the scope to `resume_parked`; return the ids it resumed."""
    runs = list(parked_runs(contact_id, automation_id))
    if not runs:
        return []
    from automations.runtime.resume import resume_parked  # runtime imports controls (action_group pauses)

    resumed = []
    for run in runs:
        if resume_parked(run, now=now):
            resumed.append(run.pk)
    return resumed


def _cancel_expiry_jobs(control: ContactAutomationControl) -> int:
    return ScheduledJob.objects.filter(kind=JobKind.PAUSE_EXPIRY, status=JobStatus.PENDING,
                                       payload__control_id=control.pk).update(status=JobStatus.CANCELLED)


def _schedule_expiry(control: ContactAutomationControl) -> ScheduledJob:
    return ScheduledJob.objects.create(
        organization_id=control.organization_id, kind=JobKind.PAUSE_EXPIRY, due_at=control.paused_until,
        payload={"control_id": control.pk, "contact_id": control.contact_id,
                 "automation_id": control.automation_id},
    )
