"""Signals the contacts app sends; the automations app listens (tag/field entrypoints)."""

from django.dispatch import Signal

# Sent after commit when a contact's tags or custom fields changed (by `contacts.actions.announce`).
# kwargs: contact, tags_added (list), tags_removed (list), fields_changed ({slug: (old, new)}),
#         trigger_depth (int: 0 from the API, run depth + 1 from an automation's action),
#         listening (False when the sender already knows no entrypoint listens; None: unknown).
contact_changed = Signal()
