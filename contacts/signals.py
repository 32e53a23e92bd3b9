"""Signals the contacts app sends; the automations app listens (tag/field entrypoints)."""

from django.dispatch import Signal

# Sent after commit when a contact's tags or custom fields changed.
# kwargs: contact, tags_added (list), tags_removed (list), fields_changed ({slug: (old, new)}),
#         trigger_depth (int: 0 from the API, run depth + 1 from an automation's action),
#         listening (False when the sender already knows no entrypoint listens; None: unknown).
contact_changed = Signal()


def diff_contact(before_tags, before_fields, contact) -> dict:
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


def send_contact_changed_on_commit(contact, changes: dict, trigger_depth: int = 0,
                                   listening: bool | None = None) -> None:
    from django.db import transaction

    if not any(changes.values()):
        return
    transaction.on_commit(lambda: contact_changed.send(
        sender=type(contact), contact=contact, trigger_depth=trigger_depth, listening=listening, **changes))
