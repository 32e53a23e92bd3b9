"""The admin as an operator reads it: every list newest first, timestamps to the second, and every object
named by what it is (never "StepRun object (1)")."""

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import models

from automations.models import InboundEvent, StepRun
from contacts.models import Message
from tests import factories

OUR_APPS = ("core", "contacts", "automations")


def our_model_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in OUR_APPS]


def test_every_list_of_ours_is_ordered_newest_first_by_a_timestamp(rf):
    checked = 0
    for model, model_admin in our_model_admins():
        if type(model_admin).changelist_view is not admin.ModelAdmin.changelist_view:
            continue  # a page of its own instead of a list (scheduler health)
        first = model_admin.get_ordering(rf.get("/"))[0]
        assert first.startswith("-"), f"{model.__name__} admin is ordered by {first!r}"
        field = model._meta.get_field(first.lstrip("-"))
        assert isinstance(field, models.DateTimeField), f"{model.__name__} admin is ordered by {first!r}"
        checked += 1
    assert checked >= 14


def test_every_model_of_ours_has_its_own_str():
    for model in apps.get_models():
        if model._meta.app_label in OUR_APPS:
            assert model.__str__ is not models.Model.__str__, f"{model.__name__} has no __str__"


def rows_in_page_order(html: str, ids: list[str]) -> list[str]:
    return sorted(ids, key=html.index)


@pytest.mark.django_db
def test_messages_and_inbound_events_list_newest_first_with_seconds(admin_client, org, contact, account):
    conversation = factories.conversation(contact, account)
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    messages = [Message.objects.create(organization=org, conversation=conversation, direction="inbound",
                                       status="received", text=f"m{i}", created_at=start + timedelta(seconds=i))
                for i in range(6)]
    events = [InboundEvent.objects.create(organization=org, event_id=f"e{i}", kind="dm_received",
                                          received_at=start + timedelta(seconds=i)) for i in range(6)]
    newest_first = [m.pk for m in reversed(messages)]
    page = admin_client.get("/admin/contacts/message/").text
    assert rows_in_page_order(page, newest_first) == newest_first
    assert "2026-01-02 03:04:10" in page and "2026-01-02 03:04:05" in page  # to the second
    newest_first = [e.pk for e in reversed(events)]
    page = admin_client.get("/admin/automations/inboundevent/").text
    assert rows_in_page_order(page, newest_first) == newest_first
    assert "2026-01-02 03:04:10" in page


@pytest.mark.django_db
def test_a_step_run_page_is_titled_by_what_it_is(admin_client, org, contact):
    automation = factories.automation(org)
    from automations.models import AutomationRun

    run = AutomationRun.objects.create(organization=org, automation=automation, contact=contact, status="active")
    step = StepRun.objects.create(run=run, automation=automation, node_key="greet", node_kind="message",
                                  outcome="success")
    page = admin_client.get(factories.admin_url(step)).text
    assert "StepRun object" not in page
    assert f"step {step.pk} of {run.pk}: greet (success)" in page
