"""Admin date drill-down (year → month → day) on the job and inbound-event lists: these group by a
time-zone truncation, the kind of query server-side parameter binding can break."""

import pytest
from django.utils import timezone

from automations.models import InboundEvent, JobKind, ScheduledJob


@pytest.mark.django_db
def test_date_hierarchy_drills_down_to_a_day(admin_client, org):
    now = timezone.now()
    ScheduledJob.objects.create(organization=org, kind=JobKind.PAUSE_EXPIRY, due_at=now, payload={})
    InboundEvent.objects.create(organization=org, event_id="x", kind="dm_received", payload={}, trace=[],
                                received_at=now)
    lists = (("/admin/automations/scheduledjob/", "due_at"), ("/admin/automations/inboundevent/", "received_at"))
    for base, field in lists:
        for q in ("", f"?{field}__year={now.year}", f"?{field}__year={now.year}&{field}__month={now.month}",
                  f"?{field}__year={now.year}&{field}__month={now.month}&{field}__day={now.day}"):
            response = admin_client.get(base + q)
            assert response.status_code == 200, (base, q, response.content[:2000])
            assert ("1 scheduled job" if "job" in base else "1 inbound event") in response.content.decode()
