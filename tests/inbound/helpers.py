"""Builders for inbound tests: active automations with entrypoints (specificity derived) and events."""

import itertools

from automations.graph import entrypoints as entrypoint_service
from automations.models import Entrypoint
from tests import factories

_events = itertools.count(1)


def active_flow(org, nodes, edges=(), **overrides):
    return factories.automation(org, factories.flow(nodes, edges), status="active", **overrides)


def reply_flow(org, text="Hello!"):
    """message → end: the simplest automation that visibly answers."""
    return active_flow(org, [("greet", "message", {"blocks": [{"type": "text", "text": text}]}),
                             ("done", "end", {})], [("greet", "next", "done")])


def make_entrypoint(automation, kind="dm_received", config=None, **fields):
    row = Entrypoint(organization=automation.organization, automation=automation, channel=automation.channel,
                     kind=kind, config=config or {}, **fields)
    entrypoint_service.apply(row, create=True)
    return row


def event(account, text="", *, user="psid-1", kind="dm_received", event_id=None, **extra):
    body = {"event_id": event_id or f"evt-{next(_events)}", "social_account_id": account.id, "kind": kind,
            "contact": {"platform_user_id": user, "name": "Alice"}, **extra}
    if text is not None:
        body["text"] = text
    return body


def send(api, capture, body):
    """POST one event and run everything it enqueued on commit (eager Celery)."""
    with capture(execute=True):
        response = api.post("/v1/inbound-events", body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()
