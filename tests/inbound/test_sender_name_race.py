"""Filling in a contact's empty name from an event never overwrites a name set meanwhile."""

import threading

import pytest

from contacts.actions import Sender, upsert_sender
from contacts.models import Contact
from tests import factories
from tests.reliability.support import backend_pid, raw_connection, wait_until


@pytest.mark.django_db(transaction=True)
def test_a_name_set_while_the_event_waits_for_the_contact_row_is_kept(org, account):
    contact = factories.contact(org, account=account, platform_user_id="psid-race", name="")
    editor = raw_connection(autocommit=False)  # an API PATCH holding the row, not yet committed
    editor.execute("UPDATE contacts SET name = 'Alice' WHERE id = %s", [contact.pk])
    pids, errors = [], []

    def deliver():
        from django.db import connection

        try:
            pids.append(backend_pid())
            upsert_sender(account, Sender(platform_user_id="psid-race", name="Bob"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=deliver)
    thread.start()
    try:
        with raw_connection() as watcher:
            wait_until(lambda: pids and watcher.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pids[0]]).fetchone()[0],
                "the event to wait for the contact row")
    finally:
        editor.commit()
        editor.close()
        thread.join(30)
    assert not errors, errors
    assert Contact.objects.get(pk=contact.pk).name == "Alice"
