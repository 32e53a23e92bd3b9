"""Each platform's webhook starts and resumes runs through the inbound pipeline (sandbox delivery: the
runs' messages are recorded on the conversation), with the platform's own ids as event ids."""

import json

import pytest

from automations.models import AutomationRun, InboundEvent, PlatformDelivery
from contacts.models import ContactIdentity, Message, MessageDirection
from tests.inbound.helpers import active_flow, make_entrypoint, reply_flow
from tests.platform_webhooks.helpers import price_flow, processed, sent_texts
from tests.platform_webhooks.payloads import (
    fb_message,
    fb_postback,
    ig_comment,
    page_envelope,
    post_meta,
    post_telegram,
    tg_callback,
    tg_edited,
    tg_message,
    wa_button_reply,
    wa_envelope,
    wa_list_reply,
    wa_text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def only_run(automation) -> AutomationRun:
    return AutomationRun.objects.get(automation=automation)


def test_telegram_price_then_button_tap_completes_the_run(org, tg_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "telegram")
    first = tg_message("Price?", update_id=501)
    with processed(django_capture_on_commit_callbacks):
        assert post_telegram(tg_account.pk, first).status_code == 200
    run = only_run(automation)
    assert (run.status, run.current_node_key) == ("waiting", "ask")
    assert sent_texts(run) == ["Small or large?"]
    event = InboundEvent.objects.get(event_id="tg:123456789:501")
    assert (event.outcome, event.kind, event.social_account_id) == ("enrolled", "dm_received", tg_account.pk)
    identity = ContactIdentity.objects.get(social_account=tg_account)
    assert (identity.platform_user_id, identity.contact.name) == ("987654321", "Ann")

    with processed(django_capture_on_commit_callbacks):
        assert post_telegram(tg_account.pk, tg_callback("b:l", update_id=502)).status_code == 200
    run.refresh_from_db()
    assert run.status == "completed"
    assert sent_texts(run) == ["Small or large?", "Large is 9 EUR"]
    tap = InboundEvent.objects.get(event_id="tg:123456789:502")
    assert (tap.outcome, tap.run_id, tap.kind) == ("resumed", run.pk, "postback")
    assert PlatformDelivery.objects.filter(status="done").count() == 2


def test_telegram_edits_and_unknown_updates_are_acknowledged_and_skipped(tg_account, org,
                                                                         django_capture_on_commit_callbacks):
    price_flow(org, "telegram")
    with processed(django_capture_on_commit_callbacks):
        assert post_telegram(tg_account.pk, tg_edited("price")).status_code == 200
        assert post_telegram(tg_account.pk, {"update_id": 9, "my_chat_member": {}}).status_code == 200
    assert InboundEvent.objects.count() == 0 and AutomationRun.objects.count() == 0
    reasons = [d.results[0]["skipped"] for d in PlatformDelivery.objects.order_by("received_at")]
    assert reasons == ["unsupported", "unsupported"]


def test_telegram_update_ids_are_scoped_to_the_bot(org, tg_account, django_capture_on_commit_callbacks):
    """Two bots both see update_id 1: two events, not a duplicate."""
    from tests import factories
    from tests.platform_webhooks.payloads import TELEGRAM_SECRET

    other = factories.social_account(org, channel="telegram", external_id="222")
    other.set_credentials({"bot_token": "222:x", "webhook_secret": TELEGRAM_SECRET})
    other.save()
    reply_flow(org)  # nothing on telegram: events are recorded as no_match
    with processed(django_capture_on_commit_callbacks):
        post_telegram(tg_account.pk, tg_message("hello", update_id=1))
        post_telegram(other.pk, tg_message("hello", update_id=1))
    assert set(InboundEvent.objects.values_list("event_id", "outcome")) == {
        ("tg:123456789:1", "no_match"), ("tg:222:1", "no_match")}


def test_whatsapp_price_then_interactive_button_completes_the_run(org, wa_account,
                                                                  django_capture_on_commit_callbacks):
    automation = price_flow(org, "whatsapp")
    with processed(django_capture_on_commit_callbacks):
        response = post_meta("whatsapp", wa_envelope(wa_account.external_id, messages=[
            wa_text("price please", wamid="wamid.PRICE1")]))
    assert response.status_code == 200
    run = only_run(automation)
    assert run.status == "waiting" and sent_texts(run) == ["Small or large?"]
    assert InboundEvent.objects.get(event_id="wamid.PRICE1").contact.name == "Sheena Nelson"

    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, messages=[wa_button_reply("b:s", "Small")]))
    run.refresh_from_db()
    assert run.status == "completed" and sent_texts(run) == ["Small or large?", "Small is 5 EUR"]


def test_whatsapp_list_reply_is_a_tap_too(org, wa_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "whatsapp")
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, messages=[wa_text("price")]))
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, messages=[wa_list_reply("b:l", "Large")]))
    run = only_run(automation)
    assert run.status == "completed" and sent_texts(run)[-1] == "Large is 9 EUR"


def test_messenger_quick_reply_resumes_the_run(org, fb_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "facebook", quick_replies=True)
    page = fb_account.external_id
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_message(page, "price", mid="m_PRICE")))
    run = only_run(automation)
    assert run.status == "waiting"
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_message(page, "Large", quick_reply="q:l", mid="m_TAP")))
    run.refresh_from_db()
    assert run.status == "completed" and sent_texts(run) == ["Small or large?", "Large is 9 EUR"]
    assert InboundEvent.objects.get(event_id="m_TAP").outcome == "resumed"


def test_messenger_postback_button_resumes_the_run(org, fb_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "facebook")
    page = fb_account.external_id
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_message(page, "price")))
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_postback(page, "b:s", title="Small")))
    run = only_run(automation)
    assert run.status == "completed" and sent_texts(run)[-1] == "Small is 5 EUR"


def test_messenger_postback_with_a_foreign_payload_starts_a_postback_automation(org, fb_account,
                                                                                 django_capture_on_commit_callbacks):
    automation = reply_flow(org, "Welcome!")
    automation.channel = "facebook"
    automation.save()
    make_entrypoint(automation, kind="postback", config={"payloads": ["GET_STARTED"]})
    page = fb_account.external_id
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_postback(page, "GET_STARTED", title="Get Started")))
    run = only_run(automation)
    assert run.status == "completed" and sent_texts(run) == ["Welcome!"]


def test_instagram_comment_starts_a_comment_created_automation(org, ig_account, django_capture_on_commit_callbacks):
    automation = reply_flow(org, "Sent you the price in DM")
    make_entrypoint(automation, kind="comment_created", config={"post_ids": ["18172143295349192"]})
    with processed(django_capture_on_commit_callbacks):
        response = post_meta("meta", ig_comment(ig_account.external_id, "Price?", comment_id="17919697626119712"))
    assert response.status_code == 200
    run = only_run(automation)
    assert run.status == "completed" and sent_texts(run) == ["Sent you the price in DM"]
    event = InboundEvent.objects.get(event_id="17919697626119712")
    assert (event.kind, event.outcome, event.contact.name) == ("comment_created", "enrolled", "ann_shop")
    assert run.context["trigger"]["post_id"] == "18172143295349192"


def test_instagram_own_comment_and_other_posts_do_not_start_it(org, ig_account, django_capture_on_commit_callbacks):
    automation = reply_flow(org)
    make_entrypoint(automation, kind="comment_created", config={"post_ids": ["18172143295349192"]})
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", ig_comment(ig_account.external_id, "Thanks!", author=ig_account.external_id))
        post_meta("meta", ig_comment(ig_account.external_id, "Price?", media_id="other-post"))
    assert AutomationRun.objects.count() == 0
    assert InboundEvent.objects.get().outcome == "no_match"


def test_instagram_dm_quick_reply_and_story_reply(org, ig_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "instagram", quick_replies=True)
    story_flow = reply_flow(org, "Thanks for the story reply")
    make_entrypoint(story_flow, kind="story_reply")
    ig = ig_account.external_id
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(ig, fb_message(ig, "price", psid="IGSID-1"), obj="instagram"))
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(ig, fb_message(ig, "Small", psid="IGSID-1", quick_reply="q:s"),
                                        obj="instagram"))
        post_meta("meta", page_envelope(ig, fb_message(ig, "nice!", psid="IGSID-2", mid="aWdf-story",
                                                       reply_to={"story": {"id": "story-9", "url": "https://x"}}),
                                        obj="instagram"))
    assert only_run(automation).status == "completed"
    story_run = AutomationRun.objects.get(automation=story_flow)
    assert story_run.context["trigger"]["story_id"] == "story-9"
    assert InboundEvent.objects.get(event_id="aWdf-story").kind == "story_reply"


def test_redelivered_webhooks_do_nothing_twice(org, tg_account, wa_account, fb_account,
                                               django_capture_on_commit_callbacks):
    """Platforms resend on any doubt; the same ids must not answer twice."""
    price_flow(org, "telegram")
    price_flow(org, "whatsapp")
    price_flow(org, "facebook")
    page = fb_account.external_id
    telegram_update = tg_message("price", update_id=777)
    whatsapp_body = wa_envelope(wa_account.external_id, messages=[wa_text("price", wamid="wamid.ONCE")])
    messenger_body = page_envelope(page, fb_message(page, "price", mid="m_ONCE"))
    for _ in range(2):
        with processed(django_capture_on_commit_callbacks):
            assert post_telegram(tg_account.pk, telegram_update).status_code == 200
            assert post_meta("whatsapp", whatsapp_body).status_code == 200
            assert post_meta("meta", messenger_body).status_code == 200
    assert AutomationRun.objects.count() == 3
    assert Message.objects.filter(direction=MessageDirection.OUTBOUND).count() == 3
    assert Message.objects.filter(direction=MessageDirection.INBOUND).count() == 3
    assert InboundEvent.objects.count() == 3
    second_round = PlatformDelivery.objects.order_by("-received_at")[:3]
    assert {d.results[0]["outcome"] for d in second_round} == {"duplicate"}


def test_a_batch_of_entries_is_processed_entry_by_entry(org, fb_account, django_capture_on_commit_callbacks):
    from tests import factories

    second_page = factories.social_account(org, channel="facebook", external_id="PAGE-2")
    reply_flow(org).delete()
    automation = active_flow(org, [("hi", "message", {"blocks": [{"type": "text", "text": "Hi"}]})],
                             channel="facebook")
    make_entrypoint(automation)
    body = {"object": "page", "entry": [
        {"id": "PAGE-1", "time": 1, "messaging": [fb_message("PAGE-1", "one", psid="A"),
                                                  fb_message("PAGE-1", "two", psid="B")]},
        {"id": "PAGE-2", "time": 1, "messaging": [fb_message("PAGE-2", "three", psid="C")]},
        {"id": "PAGE-UNKNOWN", "time": 1, "messaging": [fb_message("PAGE-UNKNOWN", "four", psid="D")]},
    ]}
    with processed(django_capture_on_commit_callbacks):
        assert post_meta("meta", body).status_code == 200
    assert AutomationRun.objects.filter(status="completed").count() == 3
    assert set(InboundEvent.objects.values_list("social_account_id", flat=True)) == {fb_account.pk, second_page.pk}
    delivery = PlatformDelivery.objects.get()
    assert delivery.status == "done"
    assert delivery.unknown_targets == ["facebook:PAGE-UNKNOWN"]
    assert [r.get("outcome") for r in delivery.results] == ["enrolled", "enrolled", "enrolled", None]


def test_unknown_page_or_number_is_acknowledged_logged_and_kept(wa_account, caplog,
                                                               django_capture_on_commit_callbacks):
    with processed(django_capture_on_commit_callbacks):
        response = post_meta("whatsapp", wa_envelope("999999", messages=[wa_text("price")]))
    assert response.status_code == 200  # so that WhatsApp stops retrying
    delivery = PlatformDelivery.objects.get()
    assert (delivery.status, delivery.unknown_targets) == ("done", ["whatsapp:999999"])
    assert InboundEvent.objects.count() == 0
    assert "no connected account for whatsapp:999999" in caplog.text


def test_echoes_of_our_own_sends_are_ignored(org, fb_account, ig_account, django_capture_on_commit_callbacks):
    price_flow(org, "facebook")
    price_flow(org, "instagram")
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope("PAGE-1", fb_message("PAGE-1", "price", is_echo=True)))
        post_meta("meta", page_envelope("IG-1", fb_message("IG-1", "price", is_echo=True), obj="instagram"))
    assert InboundEvent.objects.count() == 0 and AutomationRun.objects.count() == 0
    assert {d.results[0]["skipped"] for d in PlatformDelivery.objects.all()} == {"echo"}


def test_one_page_connected_in_two_organizations_reaches_both(org, other_org, fb_account,
                                                              django_capture_on_commit_callbacks):
    from tests import factories

    theirs = factories.social_account(other_org, channel="facebook", external_id=fb_account.external_id)
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope("PAGE-1", fb_message("PAGE-1", "hello", mid="m_SHARED")))
    assert set(InboundEvent.objects.values_list("organization_id", "social_account_id")) == {
        (org.pk, fb_account.pk), (other_org.pk, theirs.pk)}


def test_an_event_the_pipeline_refuses_is_recorded_on_the_delivery(wa_account, django_capture_on_commit_callbacks):
    long_id = "b:" + "x" * 150  # longer than an interactive id may be
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, messages=[wa_button_reply(long_id, "X")]))
    delivery = PlatformDelivery.objects.get()
    assert delivery.status == "done" and "interactive" in json.dumps(delivery.results[0]["invalid"])
    assert InboundEvent.objects.count() == 0
