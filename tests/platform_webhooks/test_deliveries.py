"""Stored deliveries survive a dead worker (the tick hands them out again), are processed once per
claim, retried on failure, pruned after the retention, and shown in the admin."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.channels.inbound import deliveries
from automations.models import AutomationRun, InboundEvent, PlatformDelivery
from automations.runtime.scheduler import tick
from tests.automations.test_celery import wait_for
from tests.platform_webhooks.helpers import price_flow, processed, sent_texts
from tests.platform_webhooks.payloads import (
    TELEGRAM_SECRET,
    fb_message,
    page_envelope,
    post_meta,
    post_telegram,
    tg_callback,
    tg_message,
)


def stored_but_never_processed(account, update) -> PlatformDelivery:
    """What a worker that died (or a lost task) leaves: the row, still pending."""
    return deliveries.store("telegram", json.dumps(update).encode(), account)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_tick_hands_out_a_delivery_whose_processing_died(org, tg_account, django_capture_on_commit_callbacks):
    automation = price_flow(org, "telegram")
    delivery = stored_but_never_processed(tg_account, tg_message("price"))
    with processed(django_capture_on_commit_callbacks):
        assert tick(now=timezone.now()).platform_deliveries_requeued == 0  # its lease has not ended yet
    assert PlatformDelivery.objects.get(pk=delivery.pk).status == "pending"

    later = timezone.now() + deliveries.LEASE + timedelta(seconds=1)
    with processed(django_capture_on_commit_callbacks):
        assert tick(now=later).platform_deliveries_requeued == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("done", 1)
    assert AutomationRun.objects.get(automation=automation).status == "waiting"


@pytest.mark.django_db
def test_a_late_task_with_an_old_lease_does_nothing(org, tg_account, django_capture_on_commit_callbacks):
    delivery = stored_but_never_processed(tg_account, tg_message("hello"))
    original_lease = delivery.lease_until
    later = timezone.now() + deliveries.LEASE + timedelta(seconds=1)
    with django_capture_on_commit_callbacks() as handed_out:
        assert deliveries.reconcile(later) == 1
    assert len(handed_out) == 1
    assert deliveries.process(delivery.pk, original_lease) is None  # the first task, arriving late
    assert InboundEvent.objects.count() == 0
    new_lease = PlatformDelivery.objects.get(pk=delivery.pk).lease_until
    assert deliveries.process(delivery.pk, new_lease).status == "done"
    assert deliveries.process(delivery.pk, new_lease) is None  # done: a second run of that task is a no-op
    assert InboundEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_failing_delivery_is_retried_later_then_marked_failed(tg_account, monkeypatch):
    delivery = stored_but_never_processed(tg_account, tg_message("hello"))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(deliveries, "_receive", broken)
    lease = delivery.lease_until
    for attempt in range(1, deliveries.MAX_ATTEMPTS + 1):
        now = timezone.now()
        assert deliveries.process(delivery.pk, lease, now=now) is not None
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and "database went away" in delivery.last_error
        if attempt < deliveries.MAX_ATTEMPTS:
            assert delivery.status == "pending" and delivery.lease_until > now  # the tick retries it then
            lease = delivery.lease_until
    assert delivery.status == "failed"
    monkeypatch.undo()
    assert deliveries.reconcile(timezone.now() + timedelta(days=1)) == 0  # given up: not handed out again


@pytest.mark.django_db
def test_old_deliveries_are_pruned_after_the_retention(settings, tg_account):
    settings.RELAY_PLATFORM_DELIVERY_RETENTION_DAYS = 3
    now = timezone.now()
    old_done = stored_but_never_processed(tg_account, tg_message("a"))
    old_pending = stored_but_never_processed(tg_account, tg_message("b"))
    recent_done = stored_but_never_processed(tg_account, tg_message("c"))
    PlatformDelivery.objects.filter(pk__in=[old_done.pk, old_pending.pk]).update(received_at=now - timedelta(days=4))
    PlatformDelivery.objects.filter(pk__in=[old_done.pk, recent_done.pk]).update(status="done")
    assert tick(now=now).platform_deliveries_pruned == 1
    assert set(PlatformDelivery.objects.values_list("pk", flat=True)) == {old_pending.pk, recent_done.pk}


@pytest.mark.django_db
def test_admin_lists_deliveries_and_filters_unknown_pages(admin_client, fb_account, eager_celery,
                                                          django_capture_on_commit_callbacks):
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope("PAGE-404", fb_message("PAGE-404", "hello")))
        post_meta("meta", page_envelope("PAGE-1", fb_message("PAGE-1", "hello")))
    unknown = PlatformDelivery.objects.get(unknown_targets=["facebook:PAGE-404"])
    listing = admin_client.get("/admin/automations/platformdelivery/?unknown_target=yes")
    assert listing.status_code == 200
    assert unknown.pk in listing.content.decode()
    assert listing.context["cl"].result_count == 1
    page = admin_client.get(f"/admin/automations/platformdelivery/{unknown.pk}/change/")
    assert page.status_code == 200
    assert "PAGE-404" in page.content.decode() and "unknown_target" in page.content.decode()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_telegram_webhook_through_a_real_worker_enrolls_then_resumes(worker, org):
    from contacts.models import Channel
    from tests import factories

    account = factories.social_account(org, channel=Channel.TELEGRAM, external_id="555")
    account.set_credentials({"bot_token": "555:x", "webhook_secret": TELEGRAM_SECRET})
    account.save()
    automation = price_flow(org, "telegram")
    assert post_telegram(account.pk, tg_message("price")).status_code == 200
    assert wait_for(lambda: AutomationRun.objects.filter(automation=automation, status="waiting").exists())
    assert post_telegram(account.pk, tg_callback("b:s")).status_code == 200
    assert wait_for(lambda: AutomationRun.objects.get(automation=automation).status == "completed")
    assert sent_texts(AutomationRun.objects.get(automation=automation)) == ["Small or large?", "Small is 5 EUR"]
    assert wait_for(lambda: not PlatformDelivery.objects.exclude(status="done").exists())
