"""Platform rules a send must follow, against the fake platforms: a comment-started run answers the
commenter with a private reply (Instagram, Messenger: one per comment, within 7 days), WhatsApp's
typing indicator is the mark-read of the contact's latest inbound message, and a Telegram group that
became a supergroup gets the message at its new chat id."""

import pytest

from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from contacts.models import ContactIdentity, DeliveryStatus, Message, MessageDirection
from tests import factories
from tests.channels.helpers import CHANNELS, RECIPIENTS, connected_account, reachable_contact
from tests.channels.test_delivery import HELLO, go, run_messages, start, steps
from tests.helpers import assert_statements

COMMENT_ID = "17919697626119712"
TWO_PARTS = {"blocks": [{"type": "text", "text": "Sent you the link!"}, {"type": "text", "text": "Anything else?"}],
             "typing_indicator_seconds": 2}


def comment_run(org, fake, provider, nodes, edges=(), *, account=None, person=None, comment_id=COMMENT_ID):
    """A run started by `comment_id` (the trigger the inbound pipeline records for comment_created)."""
    account = account or connected_account(org, fake, provider)
    person = person or reachable_contact(org, account, provider)
    automation = factories.automation(org, factories.flow(nodes, edges), status="active",
                                      channel=CHANNELS[provider])
    trigger = {"kind": "comment_created", "event_id": comment_id, "text": "Price?", "message_id": "msg_x"}
    return enroll(automation, person, social_account=account, context={"trigger": trigger}).run, account, person


def messages_requests(fake, platform):
    return [r for r in fake.requests if r["platform"] == platform and r["path"].endswith("/messages")]


# -- private replies to comments ------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["instagram", "messenger"])
def test_the_first_part_of_a_comment_run_is_a_private_reply_and_the_rest_goes_to_the_user(
        org, fake_platforms, provider, django_capture_on_commit_callbacks):
    fake_platforms.add_comment(COMMENT_ID, author=RECIPIENTS[provider])
    run, _, _ = comment_run(org, fake_platforms, provider, [("hi", "message", TWO_PARTS)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    first, second = [r["json"] for r in messages_requests(fake_platforms, provider)]  # no typing before a reply
    assert first == {"recipient": {"comment_id": COMMENT_ID}, "message": {"text": "Sent you the link!"}}
    assert second["recipient"] == {"id": RECIPIENTS[provider]} and second["message"]["text"] == "Anything else?"
    private, rest = run_messages(run)
    assert private.payload["private_reply_to_comment_id"] == COMMENT_ID
    assert "private_reply_to_comment_id" not in rest.payload
    assert fake_platforms.private_replies == {COMMENT_ID: private.provider_message_id}
    assert {private.status, rest.status} == {"sent"} and run.status == "completed"


def test_a_second_private_reply_to_the_same_comment_is_refused_and_the_run_fails(
        org, fake_platforms, django_capture_on_commit_callbacks):
    fake_platforms.add_comment(COMMENT_ID, author=RECIPIENTS["instagram"])
    first, account, person = comment_run(org, fake_platforms, "instagram", [("hi", "message", HELLO)])
    go(first.pk, django_capture_on_commit_callbacks)
    second, _, _ = comment_run(org, fake_platforms, "instagram", [("hi", "message", HELLO), ("oops", "end", {})],
                               [("hi", "error", "oops")], account=account, person=person)
    second = go(second.pk, django_capture_on_commit_callbacks)
    (message,) = run_messages(second)
    assert (message.status, message.error_code) == ("failed", "10900")
    assert "already replied" in message.error
    assert [(s.node_key, s.outcome, s.exited_via_port_key) for s in steps(second)] == [
        ("hi", "waiting", None), ("hi", "failed", "error"), ("oops", "success", None)]
    refused = messages_requests(fake_platforms, "instagram")[-1]
    assert refused["status"] == 400 and refused["answer"]["error"]["code"] == 10900
    assert len(fake_platforms.private_replies) == 1


def test_a_comment_older_than_seven_days_gets_no_private_reply(org, fake_platforms,
                                                               django_capture_on_commit_callbacks):
    fake_platforms.add_comment(COMMENT_ID, author=RECIPIENTS["instagram"], age_days=7.5)
    run, _, _ = comment_run(org, fake_platforms, "instagram", [("hi", "message", HELLO)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    (message,) = run_messages(run)
    assert (message.status, message.error_code) == ("failed", "outside_window")
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    assert fake_platforms.private_replies == {}


def test_a_run_not_started_by_a_comment_messages_the_user_and_costs_no_extra_query(
        org, fake_platforms, django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "instagram", [("hi", "message", HELLO)])
    # the run read, the run write with its message
    with assert_statements(2), django_capture_on_commit_callbacks(execute=False):
        advance(run.pk)
    (message,) = run_messages(run)
    assert "private_reply_to_comment_id" not in message.payload


def test_a_sandbox_comment_run_still_advances_in_one_read_and_one_write(org, django_capture_on_commit_callbacks):
    account = factories.social_account(org)
    person = factories.contact(org, account=account)
    factories.conversation(person, account)
    automation = factories.automation(org, factories.flow([("hi", "message", HELLO)]), status="active")
    trigger = {"kind": "comment_created", "event_id": COMMENT_ID}
    run = enroll(automation, person, social_account=account, context={"trigger": trigger}).run
    with django_capture_on_commit_callbacks(execute=True), assert_statements(2):
        advance(run.pk)
    (message,) = run_messages(run)
    assert message.status == "sent" and "private_reply_to_comment_id" not in message.payload


def test_the_fake_refuses_a_private_reply_to_a_comment_it_does_not_know(org, fake_platforms,
                                                                        django_capture_on_commit_callbacks):
    run, _, _ = comment_run(org, fake_platforms, "instagram", [("hi", "message", HELLO)], comment_id="404")
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert run_messages(run)[0].error_code == "100"


# -- WhatsApp typing indicator ------------------------------------------------------------------------

TYPING = {"blocks": [{"type": "text", "text": "Let me check"}], "typing_indicator_seconds": 3}


def inbound(person, account, wamid):
    conversation = factories.conversation(person, account)
    return Message.objects.create(organization=person.organization, conversation=conversation,
                                  direction=MessageDirection.INBOUND, status=DeliveryStatus.RECEIVED,
                                  text="hi", payload={"kind": "dm_received", "event_id": wamid})


def test_whatsapp_typing_marks_the_latest_inbound_message_read_before_the_message(
        org, fake_platforms, django_capture_on_commit_callbacks):
    account = connected_account(org, fake_platforms, "whatsapp")
    person = reachable_contact(org, account, "whatsapp")
    inbound(person, account, "wamid.OLDER1")
    inbound(person, account, "wamid.LATEST2")
    automation = factories.automation(org, factories.flow([("hi", "message", TYPING)]), status="active",
                                      channel="whatsapp")
    run = enroll(automation, person, social_account=account).run
    go(run.pk, django_capture_on_commit_callbacks)
    typing, message = messages_requests(fake_platforms, "whatsapp")
    assert typing["status"] == 200 and typing["json"] == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.LATEST2",
        "typing_indicator": {"type": "text"}}
    assert message["json"]["text"]["body"] == "Let me check"
    assert run_messages(run)[0].status == "sent"


def test_whatsapp_sends_no_typing_indicator_to_a_contact_who_never_wrote(org, fake_platforms,
                                                                         django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "whatsapp", [("hi", "message", TYPING)])
    go(run.pk, django_capture_on_commit_callbacks)
    (only,) = messages_requests(fake_platforms, "whatsapp")
    assert only["json"]["type"] == "text" and run_messages(run)[0].status == "sent"


@pytest.mark.parametrize("failure", ["server_error", "bad_token", "refused"])
def test_a_failed_whatsapp_typing_indicator_never_stops_the_message(org, fake_platforms, failure,
                                                                   django_capture_on_commit_callbacks):
    account = connected_account(org, fake_platforms, "whatsapp")
    person = reachable_contact(org, account, "whatsapp")
    if failure == "refused":  # the platform refuses to mark read a message that is not a received one
        inbound(person, account, "not-a-wamid")
    else:
        inbound(person, account, "wamid.IN1")
        fake_platforms.script("whatsapp", "messages", failure)
    automation = factories.automation(org, factories.flow([("hi", "message", TYPING)]), status="active",
                                      channel="whatsapp")
    run = enroll(automation, person, social_account=account).run
    run = go(run.pk, django_capture_on_commit_callbacks)
    typing, message = messages_requests(fake_platforms, "whatsapp")
    assert typing["status"] >= 400 and typing["json"]["status"] == "read"
    assert message["status"] == 200 and run_messages(run)[0].status == "sent"
    assert run.status == "completed"
    account.refresh_from_db()
    assert account.status == "connected"


# -- Telegram: a group upgraded to a supergroup ----------------------------------------------------------

def test_a_telegram_group_upgraded_to_a_supergroup_gets_the_message_at_its_new_id(
        org, fake_platforms, django_capture_on_commit_callbacks):
    old, new = "-4001234567", -1004001234567
    fake_platforms.migrate_telegram_chat(old, new)
    account = connected_account(org, fake_platforms, "telegram")
    group = reachable_contact(org, account, "telegram", old)
    first, second = (factories.automation(org, factories.flow([("hi", "message", HELLO)]), status="active",
                                          channel="telegram") for _ in range(2))
    run = go(enroll(first, group, social_account=account).run.pk, django_capture_on_commit_callbacks)
    refused, sent = [r for r in fake_platforms.requests if r["platform"] == "telegram"]
    assert refused["status"] == 400 and refused["json"]["chat_id"] == int(old)
    assert refused["answer"]["parameters"] == {"migrate_to_chat_id": new}
    assert sent["status"] == 200 and sent["json"]["chat_id"] == new
    (message,) = run_messages(run)
    assert (message.status, message.provider_message_id) == (
        "sent", f"{new}:{sent['answer']['result']['message_id']}")
    assert ContactIdentity.objects.get(contact=group, social_account=account).platform_user_id == str(new)

    go(enroll(second, group, social_account=account).run.pk, django_capture_on_commit_callbacks)
    later = [r for r in fake_platforms.requests if r["platform"] == "telegram"][2:]
    assert [(r["status"], r["json"]["chat_id"]) for r in later] == [(200, new)]


def test_a_telegram_migration_is_followed_once(org, fake_platforms, django_capture_on_commit_callbacks):
    """A chat that answers "migrated" again after the retry fails the message instead of looping."""
    fake_platforms.migrate_telegram_chat("-4001", -1004001)
    fake_platforms.migrate_telegram_chat("-1004001", -1009999)
    run, _ = start(org, fake_platforms, "telegram", [("hi", "message", HELLO)], user_id="-4001")
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert [r["json"]["chat_id"] for r in fake_platforms.requests if r["platform"] == "telegram"] == [
        -4001, -1004001]
    assert (run_messages(run)[0].status, run_messages(run)[0].error_code) == ("failed", "400")
