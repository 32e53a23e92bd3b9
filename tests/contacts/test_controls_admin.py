"""Pause rows edited in the admin go through runtime.controls like the API: deleting one resumes the runs
it parked, saving one with paused_until schedules (or moves) its pause_expiry job."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import JobKind, JobStatus, RunStatus, ScheduledJob
from contacts.models import ContactAutomationControl
from tests import factories
from tests.contacts.test_controls_pauses import park

pytestmark = pytest.mark.django_db

CONTROLS = "/admin/contacts/contactautomationcontrol"


@pytest.fixture
def now():
    return timezone.now()


def expiry_jobs(control_id, status=JobStatus.PENDING):
    return list(ScheduledJob.objects.filter(kind=JobKind.PAUSE_EXPIRY, status=status,
                                            payload__control_id=control_id))


def split(moment):
    local = timezone.localtime(moment)
    return {"paused_until_0": local.strftime("%Y-%m-%d"), "paused_until_1": local.strftime("%H:%M:%S")}


def form_data(response) -> dict:
    """The POST a browser would send back from an admin change page (main form and every inline)."""
    data = {}

    def add(widget):
        for sub in widget.get("subwidgets") or []:
            add(sub)
        if widget.get("subwidgets"):
            return
        if widget.get("type") == "checkbox":
            if widget["attrs"].get("checked"):
                data[widget["name"]] = "on"
            return
        value = widget.get("value")
        if isinstance(value, list):
            data[widget["name"]] = [v for v in value if v not in (None, "")]
        elif value is not None:
            data[widget["name"]] = value

    context = response.context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for bound in form:
            widget = getattr(bound.field.widget, "widget", bound.field.widget)  # unwrap the admin's related wrapper
            add(widget.get_context(bound.html_name, bound.value(), {})["widget"])
    return data


def test_deleting_a_pause_in_the_admin_resumes_the_runs_it_parked(admin_client, api, org, contact, now,
                                                                  django_capture_on_commit_callbacks):
    _, run = park(api, org, contact, now, pause_args=[("global", None)])
    control = ContactAutomationControl.objects.get(contact=contact)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(factories.admin_url(control, "delete"), {"post": "yes"})
    assert (response.status_code, response["Location"]) == (302, f"{CONTROLS}/")  # back to the list: deleted
    assert not ContactAutomationControl.objects.filter(pk=control.pk).exists()
    run.refresh_from_db()
    assert run.waiting_for != "external_event" and run.status == RunStatus.COMPLETED


def test_adding_and_editing_a_pause_in_the_admin_schedules_its_expiry(admin_client, org, contact, now,
                                                                      django_capture_on_commit_callbacks):
    until = (now + timedelta(hours=2)).replace(microsecond=0)
    response = admin_client.post(f"{CONTROLS}/add/", {"contact": contact.pk, "automation": "",
                                                      "pause_reason": "manual_takeover", **split(until)})
    assert response.status_code == 302, response.context["adminform"].form.errors
    control = ContactAutomationControl.objects.get(contact=contact)
    assert (control.organization_id, control.paused_until) == (org.pk, until)
    [job] = expiry_jobs(control.pk)
    assert job.due_at == until

    later = until + timedelta(hours=1)
    response = admin_client.post(factories.admin_url(control), {
        "contact": contact.pk, "automation": "", "pause_reason": "manual_takeover", **split(later)})
    assert response.status_code == 302
    assert [j.due_at for j in expiry_jobs(control.pk)] == [later]
    assert [j.pk for j in expiry_jobs(control.pk, JobStatus.CANCELLED)] == [job.pk]


def test_a_past_paused_until_is_refused_on_the_form(admin_client, contact, now):
    response = admin_client.post(f"{CONTROLS}/add/", {"contact": contact.pk, "automation": "",
                                                      "pause_reason": "x", **split(now - timedelta(hours=1))})
    assert response.status_code == 200
    assert "paused_until" in response.context["adminform"].form.errors
    assert not ContactAutomationControl.objects.exists()


def test_bulk_delete_in_the_admin_resumes_parked_runs(admin_client, api, org, contact, now,
                                                      django_capture_on_commit_callbacks):
    _, run = park(api, org, contact, now, pause_args=[("global", None)])
    control = ContactAutomationControl.objects.get(contact=contact)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{CONTROLS}/", {"action": "delete_selected", "_selected_action": [control.pk],
                                                      "post": "yes"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_contact_page_inline_deletes_and_adds_pauses_through_controls(admin_client, api, org, contact, now,
                                                                      django_capture_on_commit_callbacks):
    _, run = park(api, org, contact, now, pause_args=[("global", None)])
    page = factories.admin_url(contact)
    data = form_data(admin_client.get(page))
    prefix = next(key[:-len("-TOTAL_FORMS")] for key in data
                  if key.endswith("-TOTAL_FORMS") and f"{key[:-len('-TOTAL_FORMS')]}-0-pause_reason" in data)
    data[f"{prefix}-0-DELETE"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(page, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert not ContactAutomationControl.objects.filter(contact=contact).exists()

    data = form_data(admin_client.get(page))
    until = (now + timedelta(hours=2)).replace(microsecond=0)
    data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-0-automation": "", f"{prefix}-0-pause_reason": "agent",
                 **{f"{prefix}-0-{k}": v for k, v in split(until).items()}})
    response = admin_client.post(page, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    control = ContactAutomationControl.objects.get(contact=contact)
    assert [j.due_at for j in expiry_jobs(control.pk)] == [until]


def test_saving_an_unchanged_pause_whose_expiry_passed_changes_nothing(admin_client, contact, now):
    until = (now + timedelta(hours=2)).replace(microsecond=0)
    response = admin_client.post(f"{CONTROLS}/add/", {"contact": contact.pk, "automation": "",
                                                      "pause_reason": "manual_takeover", **split(until)})
    assert response.status_code == 302
    control = ContactAutomationControl.objects.get(contact=contact)
    ContactAutomationControl.objects.filter(pk=control.pk).update(paused_until=now - timedelta(minutes=5))
    [job] = expiry_jobs(control.pk)

    page = admin_client.get(factories.admin_url(control))
    response = admin_client.post(factories.admin_url(control), form_data(page))
    assert response.status_code == 302
    stored = ContactAutomationControl.objects.get(pk=control.pk)
    assert (stored.updated_at, stored.paused_until) == (control.updated_at, now - timedelta(minutes=5))
    assert [j.pk for j in expiry_jobs(control.pk)] == [job.pk]
