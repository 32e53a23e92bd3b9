"""The runs admin: list with filters and search, the run page with its step timeline, the Stop action."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from automations.models import AutomationRun
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories

pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.fixture
def waiting_run(org, contact, account):
    factories.conversation(contact, account)
    nodes = [("greet", "message", {"blocks": [{"type": "text", "text": "Hello there"}]}),
             ("hold", "delay", {"minutes": 5})]
    automation = factories.automation(org, factories.flow(nodes, [("greet", "next", "hold")]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    run.refresh_from_db()
    return run


def test_run_list_filters_and_search(admin_client, waiting_run):
    other = enroll(factories.automation(waiting_run.organization, factories.flow([("e", "end", {})]), status="active"),
                   waiting_run.contact).run
    page = admin_client.get("/admin/automations/automationrun/")
    assert page.status_code == 200 and waiting_run.pk in page.text and other.pk in page.text
    filtered = admin_client.get("/admin/automations/automationrun/", {"status__exact": "waiting"})
    assert waiting_run.pk in filtered.text and other.pk not in filtered.text
    by_automation = admin_client.get("/admin/automations/automationrun/",
                                     {"automation__id__exact": waiting_run.automation_id})
    assert waiting_run.pk in by_automation.text and other.pk not in by_automation.text
    by_contact = admin_client.get("/admin/automations/automationrun/", {"contact__id__exact": waiting_run.contact_id})
    assert waiting_run.pk in by_contact.text
    searched = admin_client.get("/admin/automations/automationrun/", {"q": other.pk})
    assert other.pk in searched.text and waiting_run.pk not in searched.text


def test_run_page_shows_the_step_timeline_read_only(admin_client, waiting_run):
    page = admin_client.get(factories.admin_url(waiting_run))
    assert page.status_code == 200
    html = page.text
    timeline = html[html.lower().index("step timeline"):]
    assert timeline.index("greet") < timeline.index("hold")  # oldest first
    assert "Hello there" in timeline and "next" in timeline and "waiting" in timeline.lower()  # payload, port, outcome
    assert 'name="_save"' not in html  # view only: runs change only through the runtime
    assert admin_client.get("/admin/automations/automationrun/add/").status_code == 403


def test_stop_selected_runs_action_asks_first_then_stops_and_logs(admin_client, admin_user, waiting_run):
    stop = {"action": "stop_selected", "_selected_action": [waiting_run.pk]}
    asked = admin_client.post("/admin/automations/automationrun/", stop)
    assert asked.status_code == 200
    assert "Yes, stop 1 run" in asked.text and waiting_run.pk in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert AutomationRun.objects.get(pk=waiting_run.pk).status == "waiting"  # nothing happened yet

    response = admin_client.post("/admin/automations/automationrun/", {**stop, "confirmed": "yes"}, follow=True)
    assert response.status_code == 200 and "Stopped 1 run(s)" in response.text
    waiting_run.refresh_from_db()
    assert (waiting_run.status, waiting_run.exit_reason) == ("exited", "admin_stopped")
    assert waiting_run.jobs.get().status == "cancelled"
    entry = LogEntry.objects.get(object_id=waiting_run.pk)
    assert (entry.user, entry.action_flag) == (admin_user, CHANGE)
    assert "admin_stopped" in entry.get_change_message()
    again = admin_client.post("/admin/automations/automationrun/", {**stop, "confirmed": "yes"}, follow=True)
    assert "0 run(s); 1 already finished" in again.text
    assert AutomationRun.objects.get(pk=waiting_run.pk).exit_reason == "admin_stopped"
    assert LogEntry.objects.filter(object_id=waiting_run.pk).count() == 1  # nothing stopped, nothing logged


def test_stop_button_on_the_run_page_asks_then_stops_and_logs(admin_client, admin_user, waiting_run):
    page = admin_client.get(factories.admin_url(waiting_run))
    stop_url = factories.admin_url(waiting_run, "stop")
    assert f'href="{stop_url}"' in page.text and "Stop run" in page.text

    asked = admin_client.get(stop_url)
    assert asked.status_code == 200 and "Yes, stop 1 run" in asked.text
    assert AutomationRun.objects.get(pk=waiting_run.pk).status == "waiting"
    assert admin_client.post(stop_url, {}).status_code == 200  # a POST without the confirmation only asks
    assert AutomationRun.objects.get(pk=waiting_run.pk).status == "waiting"

    done = admin_client.post(stop_url, {"confirmed": "yes"})
    assert done.status_code == 302 and done.url == factories.admin_url(waiting_run)
    waiting_run.refresh_from_db()
    assert (waiting_run.status, waiting_run.exit_reason) == ("exited", "admin_stopped")
    assert LogEntry.objects.get(object_id=waiting_run.pk).user == admin_user
    assert "Stop run" not in admin_client.get(factories.admin_url(waiting_run)).text  # finished: no button
    history = admin_client.get(factories.admin_url(waiting_run, "history"))
    assert "admin_stopped" in history.text


def test_stopping_needs_the_change_permission_on_runs(client, waiting_run, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_automationrun"))
    client.force_login(viewer)
    page = client.get(factories.admin_url(waiting_run))
    assert page.status_code == 200 and "Stop run" not in page.text
    stop_url = factories.admin_url(waiting_run, "stop")
    assert client.post(stop_url, {"confirmed": "yes"}).status_code == 403
    listed = client.post("/admin/automations/automationrun/",
                         {"action": "stop_selected", "_selected_action": [waiting_run.pk], "confirmed": "yes"})
    assert AutomationRun.objects.get(pk=waiting_run.pk).status == "waiting", listed.status_code
