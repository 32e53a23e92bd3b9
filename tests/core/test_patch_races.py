"""PATCH applies only the fields it sent to the row as stored now: a write that lands between the
request's first read and its save survives, and a row deleted meanwhile answers 404, not a re-insert.

The race is simulated by changing the row from inside the write serializer's is_valid (after the
view's first read, before its save)."""

import pytest

from automations.api import automations as automations_api
from automations.api import bindings as bindings_api
from automations.api import entrypoints as entrypoints_api
from automations.graph import entrypoints as rules
from automations.models import Automation, Binding, Entrypoint
from contacts.api import serializers as contact_serializers
from contacts.models import Contact
from contacts.signals import contact_changed
from tests import factories

pytestmark = pytest.mark.django_db


def meanwhile(monkeypatch, serializer_class, action):
    """Run `action` once, as a concurrent writer would, when the PATCH validates its body."""
    original = serializer_class.is_valid

    def is_valid(self, *args, **kwargs):
        action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(serializer_class, "is_valid", is_valid)


def test_automation_patch_keeps_a_concurrent_activation(api, org, monkeypatch):
    automation = factories.automation(org)
    meanwhile(monkeypatch, automations_api.AutomationUpdateSerializer,
              lambda: Automation.objects.filter(pk=automation.pk).update(status="active"))
    response = api.patch(f"/v1/automations/{automation.id}", {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "active" and response.json()["name"] == "Renamed"
    stored = Automation.objects.get(pk=automation.pk)
    assert (stored.status, stored.name) == ("active", "Renamed")


def test_contact_patch_keeps_a_tag_a_run_added(api, org, monkeypatch):
    person = factories.contact(org, tags=["lead"], name="Al")
    meanwhile(monkeypatch, contact_serializers.ContactSerializer,
              lambda: Contact.objects.filter(pk=person.pk).update(tags=["lead", "vip"]))
    changes = []

    def listener(sender, **kwargs):
        changes.append(kwargs)

    contact_changed.connect(listener)
    try:
        response = api.patch(f"/v1/contacts/{person.id}", {"name": "Alice"}, format="json")
    finally:
        contact_changed.disconnect(listener)
    assert response.status_code == 200, response.json()
    assert response.json()["tags"] == ["lead", "vip"]
    stored = Contact.objects.get(pk=person.pk)
    assert stored.tags == ["lead", "vip"] and stored.name == "Alice"
    assert changes == []  # the PATCH changed no tag or field, so it reports none


def test_contact_patch_of_tags_replaces_them_and_reports_the_change(api, org, django_capture_on_commit_callbacks):
    person = factories.contact(org, tags=["lead"], email="a@example.com")
    changes = []

    def listener(sender, **kwargs):
        changes.append(kwargs)

    contact_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.patch(f"/v1/contacts/{person.id}", {"tags": ["vip"]}, format="json")
    finally:
        contact_changed.disconnect(listener)
    assert response.status_code == 200 and response.json()["tags"] == ["vip"]
    assert Contact.objects.get(pk=person.pk).email == "a@example.com"
    assert changes[0]["tags_added"] == ["vip"] and changes[0]["tags_removed"] == ["lead"]


def test_entrypoint_patch_keeps_a_rotated_secret(api, org, monkeypatch):
    automation = factories.automation(org)
    created = api.post(f"/v1/automations/{automation.id}/entrypoints", {"kind": "webhook_inbound"},
                       format="json").json()
    rotated = {}

    def rotate():
        rotated["secret"] = rules.rotate_secret(Entrypoint.objects.get(pk=created["id"]))

    meanwhile(monkeypatch, entrypoints_api.EntrypointWriteSerializer, rotate)
    response = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"priority": 5}, format="json")
    assert response.status_code == 200, response.json()
    stored = Entrypoint.objects.get(pk=created["id"])
    assert stored.priority == 5
    assert stored.webhook_secret == rotated["secret"] != created["webhook_secret"]


@pytest.mark.parametrize("path,model", [
    ("/v1/automations/{id}", Automation),
    ("/v1/automation-bindings/{id}", Binding),
    ("/v1/automation-entrypoints/{id}", Entrypoint),
])
def test_patch_racing_a_delete_answers_404_and_does_not_recreate(api, org, account, path, model):
    automation = factories.automation(org)
    rows = {Automation: automation, Binding: factories.binding(automation, account),
            Entrypoint: factories.entrypoint(automation)}
    row = rows[model]
    # The view's only read is the locked one, so a DELETE committed before it is the race: that read
    # waits for the deleting transaction and then finds nothing.
    model.objects.filter(pk=row.pk).delete()
    body = {"name": "x"} if model is Automation else {"status": "inactive"}
    response = api.patch(path.format(id=row.pk), body, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("path,model,module", [
    ("/v1/automations/{id}", Automation, automations_api),
    ("/v1/automation-bindings/{id}", Binding, bindings_api),
    ("/v1/automation-entrypoints/{id}", Entrypoint, entrypoints_api),
])
def test_patch_reads_the_row_once_under_its_lock(api, org, account, monkeypatch, path, model, module):
    automation = factories.automation(org)
    rows = {Automation: automation, Binding: factories.binding(automation, account),
            Entrypoint: factories.entrypoint(automation)}
    reads = []
    original = module.org_object_or_404

    def counted(*args, **kwargs):
        reads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "org_object_or_404", counted)
    body = {"name": "x"} if model is Automation else {"status": "paused"}
    assert api.patch(path.format(id=rows[model].pk), body, format="json").status_code == 200
    assert reads == []  # the only read of the row is locked_or_404's
    elsewhere = factories.organization()
    theirs = factories.automation(elsewhere)
    other_rows = {Automation: theirs, Binding: factories.binding(theirs, factories.social_account(elsewhere)),
                  Entrypoint: factories.entrypoint(theirs)}
    for pk in (other_rows[model].pk, "missing"):
        response = api.patch(path.format(id=pk), body, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_contact_patch_of_a_deleted_contact_is_404(api, org, monkeypatch):
    person = factories.contact(org)
    meanwhile(monkeypatch, contact_serializers.ContactSerializer, lambda: None)
    Contact.objects.filter(pk=person.pk).delete()
    assert api.patch(f"/v1/contacts/{person.id}", {"name": "x"}, format="json").status_code == 404
    assert not Contact.objects.filter(pk=person.pk).exists()
