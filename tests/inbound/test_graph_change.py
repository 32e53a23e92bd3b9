"""Graph-change safety for waits that have no timeout job: a run whose node (or tapped port) was deleted
exits `graph_changed` — on the graph save, or when the next event reaches it — and stops blocking re-entry."""

import pytest

from automations.models import Automation, AutomationRun, JobStatus, ScheduledJob
from tests.inbound.helpers import active_flow, event, make_entrypoint, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

PROMPT = ("prompt", "message", {"blocks": [{"type": "text", "text": "Your email?"}]})
THANKS = ("thanks", "message", {"blocks": [{"type": "text", "text": "Thanks"}]})


def node(key, kind, config):
    return {"key": key, "kind": kind, "config": config}


def edge(a, port, b):
    return {"from_node": a, "from_port": port, "to_node": b, "to_port": "in"}


def input_flow(org):
    """prompt → ask (input, no timeout_min: no job will ever retire the wait) → thanks."""
    automation = active_flow(org, [PROMPT, ("ask", "input", {"field": "email", "input_type": "email"}), THANKS],
                             [("prompt", "next", "ask"), ("ask", "captured", "thanks")])
    make_entrypoint(automation, config={"keywords": ["start"]})
    return automation


def without_ask():
    return {"root_node_key": "prompt", "nodes": [node(*PROMPT), node(*THANKS)],
            "edges": [edge("prompt", "next", "thanks")]}


def test_saving_a_graph_without_the_waiting_node_exits_the_run(api, org, account,
                                                               django_capture_on_commit_callbacks):
    automation = input_flow(org)
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.waiting_for, run.current_node_key) == ("waiting", "input", "ask")
    assert not ScheduledJob.objects.filter(run=run, status=JobStatus.PENDING).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/v1/automations/{automation.pk}/graph", without_ask(), format="json")
    assert response.status_code == 200 and response.json()["graph_errors"] == []
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.current_node_key) == ("exited", "graph_changed", "ask")
    assert Automation.objects.get(pk=automation.pk).total_exited == 1

    reply = send(api, django_capture_on_commit_callbacks, event(account, "me@example.com"))
    assert reply["outcome"] == "no_match"
    again = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    assert again["outcome"] == "enrolled" and again["run_id"] != run.pk


def test_an_event_retires_a_run_whose_node_is_gone_and_goes_on_to_the_matcher(
        api, org, account, django_capture_on_commit_callbacks):
    automation = input_flow(org)
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    # A graph changed without the save-time sweep (a write from before it, or a sweep lost to a crash).
    Automation.objects.filter(pk=automation.pk).update(graph=without_ask())

    again = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.exit_reason) == ("exited", "graph_changed")
    assert again["outcome"] == "enrolled" and again["run_id"] != run.pk
    assert Automation.objects.get(pk=automation.pk).total_exited == 1


def size_graph(buttons):
    ask = node("ask", "message", {"blocks": [{"type": "text", "text": "Size?", "buttons": [
        {"id": b, "type": "branch", "label": b.title()} for b in buttons]}]})
    edges = [edge("ask", f"button.{b}", b) for b in buttons]
    return {"root_node_key": "ask", "nodes": [ask, *(node(b, "end", {"reason": b}) for b in buttons)],
            "edges": edges}


def size_flow(api, org, account, capture):
    graph = size_graph(["small", "large"])
    automation = active_flow(org, [(n["key"], n["kind"], n["config"]) for n in graph["nodes"]],
                             [(e["from_node"], e["from_port"], e["to_node"]) for e in graph["edges"]])
    make_entrypoint(automation, config={"keywords": ["size"]})
    start = send(api, capture, event(account, "size"))
    with capture(execute=True):
        response = api.put(f"/v1/automations/{automation.pk}/graph", size_graph(["large"]), format="json")
    assert response.status_code == 200 and response.json()["graph_errors"] == []
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.waiting_for) == ("waiting", "reply")  # its node is still there
    return automation, run


def test_a_tap_on_a_removed_button_exits_the_run_with_that_port(api, org, account,
                                                                django_capture_on_commit_callbacks):
    automation, run = size_flow(api, org, account, django_capture_on_commit_callbacks)
    tap = send(api, django_capture_on_commit_callbacks,
               event(account, None, kind="postback", interactive={"type": "button", "id": "small"}))
    assert tap["outcome"] != "resumed"
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.current_port_key) == ("exited", "graph_changed", "button.small")
    assert Automation.objects.get(pk=automation.pk).total_exited == 1


def test_a_tap_this_run_never_sent_leaves_it_waiting(api, org, account, django_capture_on_commit_callbacks):
    _, run = size_flow(api, org, account, django_capture_on_commit_callbacks)
    send(api, django_capture_on_commit_callbacks,
         event(account, None, kind="postback", interactive={"type": "button", "id": "medium"}))
    run.refresh_from_db()
    assert (run.status, run.waiting_for, run.exit_reason) == ("waiting", "reply", None)


def test_the_graph_save_hands_the_retirement_to_a_celery_task(api, org, account, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from automations import graph_tasks

    automation = input_flow(org)
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    enqueued = []
    monkeypatch.setattr(graph_tasks.retire_runs_off_graph, "delay", enqueued.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/v1/automations/{automation.pk}/graph", without_ask(), format="json")
    assert response.status_code == 200
    assert enqueued == [automation.pk]
    assert AutomationRun.objects.get(pk=start["run_id"]).status == "waiting"  # not retired inside the request

    graph_tasks.retire_runs_off_graph(automation.pk)  # what the worker runs
    assert AutomationRun.objects.get(pk=start["run_id"]).exit_reason == "graph_changed"


def test_a_broker_outage_does_not_fail_the_graph_save(api, org, account, monkeypatch, caplog,
                                                      django_capture_on_commit_callbacks):
    from automations import graph_tasks

    automation = input_flow(org)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(graph_tasks.retire_runs_off_graph, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/v1/automations/{automation.pk}/graph", without_ask(), format="json")
    assert response.status_code == 200
    assert "ask" not in {n["key"] for n in Automation.objects.get(pk=automation.pk).graph["nodes"]}
    assert "could not enqueue retire_runs_off_graph" in caplog.text
