"""Internal events: a tag added or removed, a custom field changed — through the API or an automation's
action_group — start the automations whose `tag_applied` / `tag_removed` / `field_changed`
entrypoints match.

Unlike a channel message (one event → at most one run), a contact change is news to every automation
that listens for it: each automation with a matching entrypoint gets the contact once, through its
best entrypoint (`Entrypoint.MATCH_ORDER`). Pause and re-entry rules apply as
for any trigger. A depth guard stops automations from triggering each other forever: a change made
by a run at depth d enrolls at depth d+1, and nothing is enrolled past enrollment.MAX_TRIGGER_DEPTH.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from automations.graph import filters
from automations.models import ActiveStatus, AutomationStatus, EnrollBlocked, Entrypoint, InboundKind
from automations.runtime import enrollment
from contacts.models import Contact, Conversation
from contacts.signals import contact_changed

logger = logging.getLogger(__name__)


def _tag_matches(config: dict, tag: str) -> bool:
    wanted = config.get("tag_ids") or []
    return not wanted or tag in wanted


def _field_matches(config: dict, slug: str, old, new) -> bool:
    keys = config.get("field_keys") or []
    if keys and slug not in keys:
        return False
    if "from" in config and config["from"] != old:
        return False
    return not ("to" in config and config["to"] != new)


def events_from_changes(tags_added, tags_removed, fields_changed) -> list[tuple[str, dict]]:
    events = [(InboundKind.TAG_APPLIED, {"tag": t}) for t in tags_added]
    events += [(InboundKind.TAG_REMOVED, {"tag": t}) for t in tags_removed]
    events += [(InboundKind.FIELD_CHANGED, {"field": slug, "from": old, "to": new})
               for slug, (old, new) in fields_changed.items()]
    return events


def _entrypoint_matches(entrypoint: Entrypoint, kind: str, data: dict, contact: Contact) -> bool:
    config = entrypoint.config or {}
    if kind in (InboundKind.TAG_APPLIED, InboundKind.TAG_REMOVED) and not _tag_matches(config, data["tag"]):
        return False
    if kind == InboundKind.FIELD_CHANGED and not _field_matches(config, data["field"], data["from"], data["to"]):
        return False
    return not entrypoint.filters or filters.evaluate(entrypoint.filters, contact=contact, context={})


def _conversation_for(contact: Contact, entrypoint: Entrypoint) -> Conversation | None:
    """Where a run started by a contact change talks: the entrypoint's account, else the contact's most
    recent conversation on the automation's channel."""
    conversations = Conversation.objects.filter(contact=contact, social_account__channel=entrypoint.channel)
    if entrypoint.social_account_id:
        conversations = conversations.filter(social_account_id=entrypoint.social_account_id)
    return conversations.select_related("social_account").order_by("-last_inbound_at", "-created_at").first()


def fire(contact: Contact, events: list[tuple[str, dict]], *, trigger_depth: int = 0,
         candidates: list[Entrypoint] | None = None) -> list[dict]:
    """Enroll the contact into every automation whose entrypoint matches one of `events` (`candidates`:
    the listening entrypoints, if the caller already read them).

    Returns one report per automation considered: {automation_id, entrypoint_id, event, run_id|blocked}."""
    if not events:
        return []
    if trigger_depth > enrollment.MAX_TRIGGER_DEPTH:
        logger.warning("contact %s: trigger depth %s exceeds %s; internal events ignored", contact.pk,
                       trigger_depth, enrollment.MAX_TRIGGER_DEPTH)
        return [{"event": kind, "blocked": EnrollBlocked.TRIGGER_DEPTH_EXCEEDED} for kind, _ in events]
    reports, served = [], set()
    if candidates is None:
        candidates = _candidates(contact.organization_id, events)
    for kind, data in events:
        for entrypoint in candidates:
            if entrypoint.kind != kind or entrypoint.automation_id in served:
                continue
            if not _entrypoint_matches(entrypoint, kind, data, contact):
                continue
            served.add(entrypoint.automation_id)
            conversation = _conversation_for(contact, entrypoint)
            result = enrollment.enroll(
                entrypoint.automation, contact, entrypoint=entrypoint, conversation=conversation,
                social_account=conversation.social_account if conversation else entrypoint.social_account,
                context={"trigger": {"kind": kind, **data}}, source=enrollment.TRIGGER,
                trigger_depth=trigger_depth,
            )
            reports.append({"automation_id": entrypoint.automation_id, "entrypoint_id": entrypoint.id,
                            "event": kind, "run_id": result.run.pk if result.run is not None and result.ok else None,
                            "blocked": result.blocked})
    return reports


def _listening(organization_id: str, events: list[tuple[str, dict]]):
    return Entrypoint.objects.filter(
        organization_id=organization_id, kind__in={kind for kind, _ in events},
        status=ActiveStatus.ACTIVE, automation__status=AutomationStatus.ACTIVE,
    )


def _candidates(organization_id: str, events: list[tuple[str, dict]]) -> list[Entrypoint]:
    """Active entrypoints of active automations listening for these event kinds, in match order."""
    return list(_listening(organization_id, events).select_related("automation")
                .order_by(*Entrypoint.MATCH_ORDER))


@receiver(contact_changed)
def on_contact_changed(sender, contact, tags_added=(), tags_removed=(), fields_changed=None, trigger_depth=0,
                       listening=None, **kwargs):
    if listening is False:  # the run that changed the contact read, with itself, that nothing listens
        return
    events = events_from_changes(tags_added, tags_removed, fields_changed or {})
    # Most changes have no listener: a lean EXISTS first (building the full entrypoint + automation query
    # costs Django several times more than PostgreSQL spends answering it), the contact only if needed.
    if not events or not _listening(contact.organization_id, events).exists():
        return
    fresh = Contact.objects.filter(pk=contact.pk).first()
    if fresh is not None:
        fire(fresh, events, trigger_depth=trigger_depth)
