"""End to end through a real Celery worker, per provider, against the fake platforms: a button
message reaches the platform as the platform's request and the run waits for the tap; a rate limit
is retried after its wait (never a failure); the platform's refusal (outside the window / blocked)
takes the message node's `error` port; a bad token leaves the account needs_reauth."""

import pytest

from automations.models import AutomationRun
from automations.runtime.enrollment import enroll
from contacts.models import Message, SocialAccount
from tests import factories
from tests.channels.helpers import CHANNELS, connected_account, reachable_contact
from tests.reliability.support import Worker, private_broker, wait_until

ASK = {"blocks": [{"type": "text", "text": "Small or large?", "buttons": [
    {"id": "s", "type": "branch", "label": "Small"}, {"id": "l", "type": "branch", "label": "Large"}]}]}
HELLO = {"blocks": [{"type": "text", "text": "Hello"}]}
REFUSAL = {"telegram": "blocked", "whatsapp": "outside_window", "messenger": "outside_window",
           "instagram": "outside_window"}
REFUSAL_CODE = {"telegram": "403", "whatsapp": "outside_window", "messenger": "outside_window",
                "instagram": "outside_window"}
MATCH = {"telegram": "sendMessage", "whatsapp": "messages", "messenger": "messages", "instagram": "messages"}


def button_ids(provider: str, body: dict) -> list[str]:
    if provider == "telegram":
        return [row[0]["callback_data"] for row in body["reply_markup"]["inline_keyboard"]]
    if provider == "whatsapp":
        return [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]]
    return [b["payload"] for b in body["message"]["attachment"]["payload"]["buttons"]]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["telegram", "whatsapp", "messenger", "instagram"])
def test_delivery_through_a_worker(provider, tmp_path, fake_platforms):
    org = factories.organization()
    account = connected_account(org, fake_platforms, provider)
    flow = factories.flow([("ask", "message", ASK), ("hi", "message", HELLO), ("sorry", "end", {"reason": "x"})],
                          [("hi", "error", "sorry")], root="ask")
    buttons = factories.automation(org, flow, status="active", channel=CHANNELS[provider])
    hello = factories.automation(org, factories.flow([("hi", "message", HELLO), ("sorry", "end", {})],
                                                     [("hi", "error", "sorry")]),
                                 status="active", channel=CHANNELS[provider])
    people = [reachable_contact(org, account, provider, user_id=f"16505550{n:03d}") for n in range(4)]

    def run_of(automation, person):
        with private_broker(tmp_path):
            return enroll(automation, person, social_account=account).run

    def settled(run):
        def check():
            row = AutomationRun.objects.get(pk=run.pk)
            return row if row.waiting_for != "delivery" and row.status != "active" else None
        return wait_until(check, f"run {run.pk} to settle", timeout=60, logs=worker.logs)

    worker = Worker(tmp_path, **fake_platforms.env())
    try:
        # 1. Buttons: the platform's own request, ids `b:<id>`; the run then waits for the tap.
        run = settled(run_of(buttons, people[0]))
        (sent,) = fake_platforms.sent(provider)
        assert button_ids(provider, sent["json"]) == ["b:s", "b:l"]
        assert (run.status, run.waiting_for) == ("waiting", "reply")
        assert Message.objects.get(run_id=run.pk).status == "sent"

        # 2. A rate limit: retried after the wait, sent once, the run moves on.
        fake_platforms.script(provider, MATCH[provider], "rate_limited", retry_after=1)
        run = settled(run_of(hello, people[1]))
        limited, retried = [r for r in fake_platforms.requests if r["json"] and "Hello" in str(r["json"])][-2:]
        assert limited["status"] in (400, 429) and retried["status"] == 200
        assert retried["at"] - limited["at"] >= 0.9  # Telegram's retry_after=1; Graph backs off 5 s
        message = Message.objects.get(run_id=run.pk)
        assert (message.status, message.error_code, run.status) == ("sent", "", "completed")

        # 3. The platform refuses the message: failed, and the node's `error` port.
        fake_platforms.script(provider, MATCH[provider], REFUSAL[provider])
        run = settled(run_of(hello, people[2]))
        message = Message.objects.get(run_id=run.pk)
        assert (message.status, message.error_code) == ("failed", REFUSAL_CODE[provider])
        assert (run.status, run.current_node_key) == ("completed", "sorry")

        # 4. A bad token: the account needs new credentials; the run fails (no error edge on `ask`).
        fake_platforms.script(provider, MATCH[provider], "bad_token")
        run = settled(run_of(buttons, people[3]))
        assert (run.status, run.exit_reason) == ("failed", "handler_failure")
        assert Message.objects.get(run_id=run.pk).error_code == "needs_reauth"
        assert SocialAccount.objects.get(pk=account.pk).status == "needs_reauth"
    finally:
        worker.stop()
