"""Webhook in → run → message out to the fake platform (tests.fakes.platforms) → the user's tap comes back
as a webhook → the run resumes and completes: Telegram, WhatsApp, Messenger and an Instagram comment."""

import pytest

from automations.models import AutomationRun, InboundEvent
from contacts.models import Message
from tests.channels.helpers import EXTERNAL_IDS, RECIPIENTS, connected_account
from tests.inbound.helpers import make_entrypoint, reply_flow
from tests.platform_webhooks.helpers import price_flow, processed, sent_texts
from tests.platform_webhooks.payloads import (
    TELEGRAM_SECRET,
    fb_message,
    ig_comment,
    page_envelope,
    post_meta,
    post_telegram,
    tg_callback,
    tg_message,
    wa_button_reply,
    wa_envelope,
    wa_status,
    wa_text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def telegram_bot(org, fake):
    account = connected_account(org, fake, "telegram")
    account.set_credentials({**account.credentials, "webhook_secret": TELEGRAM_SECRET})
    account.save()
    return account


def test_telegram_price_inline_keyboard_tap_completes_and_answers_the_callback(
        org, fake_platforms, django_capture_on_commit_callbacks):
    account = telegram_bot(org, fake_platforms)
    automation = price_flow(org, "telegram")
    user = int(RECIPIENTS["telegram"])
    with processed(django_capture_on_commit_callbacks):
        assert post_telegram(account.pk, tg_message("price", user_id=user)).status_code == 200
    (question,) = fake_platforms.sent("telegram")
    assert question["name"] == "sendmessage" and question["json"]["chat_id"] == user
    keyboard = question["json"]["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == ["b:s", "b:l"]

    tap = tg_callback(keyboard[1][0]["callback_data"], user_id=user, query_id="cbq-1")
    with processed(django_capture_on_commit_callbacks):
        assert post_telegram(account.pk, tap).status_code == 200
    run = AutomationRun.objects.get(automation=automation)
    assert run.status == "completed"
    answered = [r for r in fake_platforms.sent("telegram") if r["name"] == "answercallbackquery"]
    assert [r["json"]["callback_query_id"] for r in answered] == ["cbq-1"]
    texts = [r["json"]["text"] for r in fake_platforms.sent("telegram") if r["name"] == "sendmessage"]
    assert texts == ["Small or large?", "Large is 9 EUR"]

    with processed(django_capture_on_commit_callbacks):  # Telegram redelivers the same update
        assert post_telegram(account.pk, tap).status_code == 200
    assert len(fake_platforms.sent("telegram")) == 3  # nothing sent or answered twice


def test_whatsapp_interactive_buttons_complete_the_run_and_statuses_come_back(
        org, fake_platforms, django_capture_on_commit_callbacks):
    account = connected_account(org, fake_platforms, "whatsapp")
    automation = price_flow(org, "whatsapp")
    user = RECIPIENTS["whatsapp"]
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(account.external_id, messages=[wa_text("price", sender=user)]))
    (question,) = fake_platforms.sent("whatsapp")
    buttons = question["json"]["interactive"]["action"]["buttons"]
    assert [b["reply"]["id"] for b in buttons] == ["b:s", "b:l"]
    wamid = question["answer"]["messages"][0]["id"]

    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(account.external_id, messages=[
            wa_button_reply(buttons[0]["reply"]["id"], buttons[0]["reply"]["title"], sender=user, context_id=wamid)]))
    run = AutomationRun.objects.get(automation=automation)
    assert run.status == "completed" and sent_texts(run) == ["Small or large?", "Small is 5 EUR"]
    assert fake_platforms.sent("whatsapp")[-1]["json"]["text"]["body"] == "Small is 5 EUR"

    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(account.external_id, statuses=[wa_status(wamid, "read", recipient=user)]))
    assert Message.objects.get(provider_message_id=wamid).status == "read"


def test_messenger_quick_reply_completes_the_run(org, fake_platforms, django_capture_on_commit_callbacks):
    account = connected_account(org, fake_platforms, "messenger")
    automation = price_flow(org, "facebook", quick_replies=True)
    page, psid = account.external_id, RECIPIENTS["messenger"]
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_message(page, "price", psid=psid)))
    (question,) = fake_platforms.sent("messenger")
    replies = question["json"]["message"]["quick_replies"]
    assert [(q["title"], q["payload"]) for q in replies] == [("Small", "q:s"), ("Large", "q:l")]

    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_message(page, "Large", psid=psid, quick_reply=replies[1]["payload"])))
    run = AutomationRun.objects.get(automation=automation)
    assert run.status == "completed"
    assert fake_platforms.sent("messenger")[-1]["json"]["message"]["text"] == "Large is 9 EUR"


def test_instagram_comment_starts_a_comment_created_automation_that_answers(
        org, fake_platforms, django_capture_on_commit_callbacks):
    account = connected_account(org, fake_platforms, "instagram")
    automation = reply_flow(org, "Sent you the price")
    make_entrypoint(automation, kind="comment_created")
    fake_platforms.add_comment("17919697626119712", author=RECIPIENTS["instagram"])
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", ig_comment(EXTERNAL_IDS["instagram"], "Price?", author=RECIPIENTS["instagram"],
                                     comment_id="17919697626119712"))
    run = AutomationRun.objects.get(automation=automation)
    assert run.status == "completed"
    assert InboundEvent.objects.get(event_id="17919697626119712").social_account_id == account.pk
    (answer,) = fake_platforms.sent("instagram")
    assert answer["json"] == {"recipient": {"comment_id": "17919697626119712"},
                              "message": {"text": "Sent you the price"}}


def test_an_instagram_comment_gets_a_private_reply_then_the_dm_answer_goes_to_the_igsid(
        org, fake_platforms, django_capture_on_commit_callbacks):
    """The first message of a comment-started run is the comment's private reply; once the user answers
    in the inbox, the run's next message goes to the user's IGSID."""
    ig_id, igsid = EXTERNAL_IDS["instagram"], RECIPIENTS["instagram"]
    connected_account(org, fake_platforms, "instagram")
    automation = price_flow(org, "instagram", quick_replies=True)
    make_entrypoint(automation, kind="comment_created")
    fake_platforms.add_comment("17919697626119999", author=igsid)
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", ig_comment(ig_id, "How much?", author=igsid, comment_id="17919697626119999"))
    (ask,) = fake_platforms.sent("instagram")
    assert ask["json"]["recipient"] == {"comment_id": "17919697626119999"}
    replies = ask["json"]["message"]["quick_replies"]
    assert fake_platforms.private_replies == {"17919697626119999": ask["answer"]["message_id"]}

    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(ig_id, fb_message(ig_id, "Large", psid=igsid,
                                                          quick_reply=replies[1]["payload"]), obj="instagram"))
    run = AutomationRun.objects.get(automation=automation)
    assert run.status == "completed"
    answer = fake_platforms.sent("instagram")[-1]["json"]
    assert answer["recipient"] == {"id": igsid} and answer["message"]["text"] == "Large is 9 EUR"
    assert sent_texts(run) == ["Small or large?", "Large is 9 EUR"]
    assert list(Message.objects.filter(run_id=run.pk).order_by("created_at").values_list("status", flat=True)) \
        == ["sent", "sent"]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_telegram_round_trip_through_a_real_worker(worker, fake_platforms):
    """The same as the first test with nothing run inline: the webhook answers at once, the worker does the rest."""
    from tests import factories
    from tests.automations.test_celery import wait_for

    org = factories.organization()
    account = telegram_bot(org, fake_platforms)
    automation = price_flow(org, "telegram")
    user = int(RECIPIENTS["telegram"])
    assert post_telegram(account.pk, tg_message("price", user_id=user)).status_code == 200
    assert wait_for(lambda: len(fake_platforms.sent("telegram")) == 1)
    assert post_telegram(account.pk, tg_callback("b:s", user_id=user, query_id="cbq-w")).status_code == 200
    assert wait_for(lambda: AutomationRun.objects.get(automation=automation).status == "completed")
    assert wait_for(lambda: len(fake_platforms.sent("telegram")) == 3)
    calls = [(r["name"], r["json"].get("text") or r["json"].get("callback_query_id"))
             for r in fake_platforms.sent("telegram")]
    assert sorted(calls) == sorted([("sendmessage", "Small or large?"), ("sendmessage", "Small is 5 EUR"),
                                    ("answercallbackquery", "cbq-w")])
