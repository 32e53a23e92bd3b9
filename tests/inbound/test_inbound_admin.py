import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from automations.models import InboundEvent
from tests import factories
from tests.inbound.helpers import event, make_entrypoint, reply_flow, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def test_admin_explains_why_an_event_enrolled_nobody(api, org, account, django_capture_on_commit_callbacks):
    entry = make_entrypoint(reply_flow(org), config={"keywords": ["price"]})
    body = send(api, django_capture_on_commit_callbacks, event(account, "hello"))
    stored = InboundEvent.objects.get(event_id=body["event_id"])
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/automations/inboundevent/?outcome=no_match")
    assert listing.status_code == 200 and stored.event_id in listing.content.decode()
    page = client.get(factories.admin_url(stored)).content.decode()
    assert entry.id in page and "text did not match the keywords" in page
