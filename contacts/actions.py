"""Writes to contacts that every door shares — the contacts API, inbound events, automations' tag and
field actions, webhooks — so each is done one way: who sent something is found or created (two events
for a new person make one contact), and tag / custom-field changes are written once and announced once.

The announcement is `contacts.signals.contact_changed`, sent after commit; the automations app listens
(it starts the tag_applied / tag_removed / field_changed entrypoints). A change a platform reports is
announced by its inbound event instead: the event keeps what changed on its row and fires it exactly
once per event id, so `change_tags_and_fields` returns the changes rather than sending them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from automations.runtime.hooks import Rows, WritePhase
from automations.store.contacts import UPDATE_TAGS_AND_FIELDS
from automations.store.inbound import upsert_sender_row
from contacts.models import Contact, ContactIdentity, SocialAccount
from contacts.signals import contact_changed
from relay.core.errors import ApiError
from relay.core.serializers import save_changes

# -- who sent it ----------------------------------------------------------------------------------


@dataclass
class Sender:
    """Who sent the event: an existing contact id, or the platform's user id (+ optional name)."""

    contact_id: str | None = None
    platform_user_id: str | None = None
    name: str = ""


def upsert_sender(account: SocialAccount, sender: Sender) -> Contact:
    """Find the contact by id or by (account, platform_user_id); create contact + identity if new, and
    fill in an unnamed contact's name when the event brings one. One statement: the inbound path's."""
    if sender.contact_id:
        return Contact.objects.get(organization_id=account.organization_id, pk=sender.contact_id)
    contact = Contact(organization_id=account.organization_id, name=sender.name or "")
    identity = ContactIdentity(contact_id=contact.pk, social_account_id=account.pk,
                               platform_user_id=sender.platform_user_id)
    found = upsert_sender_row(contact, identity, name=sender.name or "", now=timezone.now())
    if found is not None:
        return found
    # Another event for the same new person created them a moment ago (after this statement's snapshot).
    return ContactIdentity.objects.select_related("contact").get(
        social_account=account, platform_user_id=sender.platform_user_id).contact


def find_or_create_contact(organization_id: str, field: str, value: str, *, create: bool,
                           name: str = "") -> Contact | None:
    """The organization's contact whose `field` (pk, email or phone) is `value`; when there is none and
    `create` allows, a new one with that value and `name`. None: not found, not created."""
    contact = Contact.objects.filter(organization_id=organization_id, **{field: value}).first()
    if contact is None and create:
        contact = create_contact(organization_id, name=name, **{field: value})
    return contact


# -- contact rows ---------------------------------------------------------------------------------


@transaction.atomic
def create_contact(organization_id: str, *, identities=(), **fields) -> Contact:
    """A new contact with its identities ({social_account, platform_user_id}); its tags and fields are
    announced like any change."""
    contact = Contact.objects.create(organization_id=organization_id, **fields)
    _add_identities(contact, identities)
    announce(contact, changes_between([], {}, contact))
    return contact


@transaction.atomic
def update_contact(contact: Contact, fields: dict, identities=None) -> Contact:
    """Write the `fields` given (and only those) to `contact`, the caller's locked row, and replace its
    identities when `identities` is given; announce what that changed in its tags and fields."""
    before_tags, before_fields = list(contact.tags or []), dict(contact.custom_fields or {})
    save_changes(contact, fields)
    if identities is not None:
        contact.identities.all().delete()
        _add_identities(contact, identities)
    announce(contact, changes_between(before_tags, before_fields, contact))
    return contact


def _add_identities(contact: Contact, identities) -> None:
    for identity in identities:
        taken = ContactIdentity.objects.filter(
            social_account=identity["social_account"], platform_user_id=identity["platform_user_id"]
        ).exists()
        if taken:
            raise ApiError("identity_taken", "That platform_user_id already belongs to another contact.",
                           status=409, details={"identities": [identity["platform_user_id"]]})
        ContactIdentity.objects.create(contact=contact, **identity)


# -- tags and custom fields -----------------------------------------------------------------------


def change_tags_and_fields(contact: Contact, *, add_tags=(), remove_tags=(), set_fields=None) -> dict:
    """Apply tag / field changes to the contact's row under its lock (so what changed is exact when two
    writers race) and return what changed, in `contact_changed`'s shape, without announcing it."""
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    before_tags, before_fields = list(locked.tags or []), dict(locked.custom_fields or {})
    tags = [*before_tags, *(tag for tag in dict.fromkeys(add_tags) if tag not in before_tags)]
    locked.tags = [tag for tag in tags if tag not in remove_tags]
    locked.custom_fields = {**before_fields, **(set_fields or {})}
    locked.save(update_fields=["tags", "custom_fields", "updated_at"])
    return changes_between(before_tags, before_fields, locked)


class ContactEdits:
    """An automation run's tag and field changes to its contact. Applied to the contact object at once
    (later nodes of the run see them) and kept as net changes — the last per tag or slug wins — until the
    run's write takes them (`pending_write`) as one UPDATE relative to the row, so a concurrent change to
    another tag or field is kept; announced once that write is done (`announce`)."""

    def __init__(self, contact: Contact | None):
        self.contact = contact
        self._tags: dict[str, bool] = {}  # tag -> added (True) / removed (False)
        self._fields: dict[str, tuple[bool, object]] = {}  # slug -> (set?, value)
        self._snapshot()

    def add_tag(self, tag: str) -> bool:
        tags = list(self.contact.tags or [])
        if tag in tags:
            return False
        self.contact.tags = [*tags, tag]
        self._tags[tag] = True
        return True

    def remove_tag(self, tag: str) -> bool:
        tags = list(self.contact.tags or [])
        if tag not in tags:
            return False
        self.contact.tags = [t for t in tags if t != tag]
        self._tags[tag] = False
        return True

    def set_field(self, slug: str, value) -> None:
        self.contact.custom_fields = {**(self.contact.custom_fields or {}), slug: value}
        self._fields[slug] = (True, value)

    def clear_field(self, slug: str) -> None:
        fields = dict(self.contact.custom_fields or {})
        fields.pop(slug, None)
        self.contact.custom_fields = fields
        self._fields[slug] = (False, None)

    def pending_write(self) -> Rows | None:
        """The changes since the last write as one UPDATE riding on the run write (None: none): tags
        appended in order without duplicates, removed ones dropped; cleared slugs deleted, set slugs
        merged. Taken: they are not written twice."""
        tag_changes, field_changes = self._tags, self._fields
        self.discard()
        if self.contact is None or not (tag_changes or field_changes):
            return None
        return Rows(WritePhase.CONTACT, UPDATE_TAGS_AND_FIELDS, {
            "contact": self.contact.pk,
            "tags_changed": bool(tag_changes),
            "add_tags": [t for t, added in tag_changes.items() if added],
            "remove_tags": [t for t, added in tag_changes.items() if not added],
            "fields_changed": bool(field_changes),
            "clear_fields": [slug for slug, (is_set, _) in field_changes.items() if not is_set],
            "set_fields": json.dumps({slug: value for slug, (is_set, value) in field_changes.items() if is_set}),
        })

    def discard(self) -> None:
        """Forget the changes not written yet (the write they were to ride on lost)."""
        self._tags, self._fields = {}, {}

    def announce(self, *, trigger_depth: int, listening: bool | None) -> None:
        """Announce (after commit) what changed since the last announcement."""
        if self.contact is None:
            return
        announce(self.contact, changes_between(self._tags_before, self._fields_before, self.contact),
                 trigger_depth=trigger_depth, listening=listening)
        self._snapshot()

    def _snapshot(self) -> None:
        self._tags_before = list(getattr(self.contact, "tags", None) or [])
        self._fields_before = dict(getattr(self.contact, "custom_fields", None) or {})


# -- the announcement -----------------------------------------------------------------------------


def changes_between(before_tags, before_fields, contact: Contact) -> dict:
    """What changed between a snapshot and the contact now, in contact_changed's kwargs shape."""
    before_tags, after_tags = list(before_tags or []), list(contact.tags or [])
    before_fields, after_fields = dict(before_fields or {}), dict(contact.custom_fields or {})
    fields_changed = {
        slug: (before_fields.get(slug), after_fields.get(slug))
        for slug in set(before_fields) | set(after_fields)
        if before_fields.get(slug) != after_fields.get(slug)
    }
    return {
        "tags_added": [t for t in after_tags if t not in before_tags],
        "tags_removed": [t for t in before_tags if t not in after_tags],
        "fields_changed": fields_changed,
    }


def announce(contact: Contact, changes: dict, *, trigger_depth: int = 0, listening: bool | None = None) -> None:
    """Send contact_changed once the transaction commits, if anything changed. `trigger_depth`: 0 from
    the API, the run's depth + 1 from an automation; `listening`: False when the caller already knows no
    entrypoint listens (None: unknown)."""
    if not any(changes.values()):
        return
    transaction.on_commit(lambda: contact_changed.send(
        sender=type(contact), contact=contact, trigger_depth=trigger_depth, listening=listening, **changes))
