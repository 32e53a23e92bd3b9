"""The "nobody listens for contact changes" hint read with the run holds for its first write only: an
entrypoint created while the run waits on an http_request call-out sees the tag the run adds after it."""

import pytest
from django.db import connection

from automations.models import AutomationRun, Entrypoint
from automations.runtime import enrollment
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories


@pytest.mark.django_db(transaction=True)
def test_an_entrypoint_created_during_a_call_out_sees_the_tag_added_after_it(org, account, contact, settings,
                                                                            monkeypatch):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    factories.conversation(contact, account)
    listener = factories.automation(org, factories.flow([("hold", "delay", {"minutes": 10})]), status="active")

    def create_the_listener(handler):
        Entrypoint.objects.create(organization=org, automation=listener, channel=listener.channel,
                                  kind="tag_applied", config={"tag_ids": ["vip"]})
        connection.close()  # this thread's connection
        return 200, {}, b"ok"

    with factories.local_http_server({"/": create_the_listener}) as server:
        tagger = factories.automation(org, factories.flow(
            [("call", "http_request", {"method": "GET", "url": server.url + "/"}),
             ("t", "action_group", {"actions": [{"id": "a", "type": "tag_add", "tag": "vip"}]}),
             ("bye", "end", {})],
            [("call", "success", "t"), ("t", "next", "bye")]), status="active")
        run = enroll(tagger, contact, source="manual").run
        advance(run.pk)
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"
    assert AutomationRun.objects.filter(automation=listener, contact=contact).exists()
