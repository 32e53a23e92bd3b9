"""Automations the platform tests drive, and a way to post a delivery and run what it enqueued."""

from contextlib import contextmanager

from automations.models import AutomationRun
from contacts.models import Message, MessageDirection
from tests.inbound.helpers import active_flow, make_entrypoint


def price_flow(org, channel, *, quick_replies=False):
    """'price' → a question with two branch buttons (or quick replies) → the chosen answer → end."""
    if quick_replies:
        ask = {"blocks": [{"type": "text", "text": "Small or large?"}],
               "quick_replies": [{"id": "s", "label": "Small"}, {"id": "l", "label": "Large"}]}
        small, large = "quick_reply.s", "quick_reply.l"
    else:
        ask = {"blocks": [{"type": "text", "text": "Small or large?", "buttons": [
            {"id": "s", "type": "branch", "label": "Small"}, {"id": "l", "type": "branch", "label": "Large"}]}]}
        small, large = "button.s", "button.l"
    automation = active_flow(org, [
        ("ask", "message", ask),
        ("small", "message", {"blocks": [{"type": "text", "text": "Small is 5 EUR"}]}),
        ("large", "message", {"blocks": [{"type": "text", "text": "Large is 9 EUR"}]}),
        ("done", "end", {})],
        [("ask", small, "small"), ("ask", large, "large"), ("small", "next", "done"), ("large", "next", "done")],
        channel=channel)
    make_entrypoint(automation, config={"keywords": ["price"], "match_mode": "contains"})
    return automation


@contextmanager
def processed(capture):
    """Everything enqueued while posting runs inline (eager Celery): the delivery's processing, the runs."""
    with capture(execute=True):
        yield


def sent_texts(run: AutomationRun) -> list[str]:
    return list(Message.objects.filter(run_id=run.pk, direction=MessageDirection.OUTBOUND)
                .order_by("created_at", "id").values_list("text", flat=True))
