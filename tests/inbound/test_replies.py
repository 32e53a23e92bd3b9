"""Replies resume waiting runs: input validation and attempts, one tap → one run, wait_for_reply,
wait_event, timeout jobs cancelled — and a whole conversation driven through /v1/inbound-events alone."""

import pytest

from automations.models import AutomationRun, JobStatus, ScheduledJob, StepRun
from contacts.models import Contact, Message
from tests.inbound.helpers import active_flow, event, make_entrypoint, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def ask_flow(org, input_config, after=None):
    nodes = [("prompt", "message", {"blocks": [{"type": "text", "text": "Your email?"}]}),
             ("ask", "input", {"field": "email", "input_type": "email", **input_config}),
             ("ok", "message", {"blocks": [{"type": "text", "text": "Thanks {{context.email}}"}]}),
             ("bad", "message", {"blocks": [{"type": "text", "text": "Giving up"}]})]
    edges = [("prompt", "next", "ask"), ("ask", "captured", "ok"), ("ask", "invalid", "bad")]
    automation = active_flow(org, nodes + (after or []), edges)
    make_entrypoint(automation, config={"keywords": ["start"]})
    return automation


def texts(contact_id):
    return list(Message.objects.filter(conversation__contact_id=contact_id, direction="outbound")
                .order_by("created_at", "id").values_list("text", flat=True))


def test_valid_input_is_captured(api, org, account, django_capture_on_commit_callbacks):
    ask_flow(org, {"timeout_min": 30})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.waiting_for, run.current_node_key) == ("waiting", "input", "ask")
    timeout_job = ScheduledJob.objects.get(run=run)
    answer = send(api, django_capture_on_commit_callbacks, event(account, "ME@example.com"))
    assert answer["outcome"] == "resumed" and answer["run_id"] == run.id
    run.refresh_from_db()
    assert run.status == "completed" and run.context["email"] == "me@example.com"
    assert texts(start["contact_id"]) == ["Your email?", "Thanks me@example.com"]
    timeout_job.refresh_from_db()
    assert timeout_job.status == JobStatus.CANCELLED
    captured = StepRun.objects.get(run_id=run.id, node_key="ask", exited_via_port_key="captured")
    assert captured.payload["captured"] == "me@example.com"


def test_resume_and_reprompt_rows_keep_the_port_the_wait_was_entered_through(
        api, org, account, django_capture_on_commit_callbacks):
    ask_flow(org, {"max_retries": 2})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    send(api, django_capture_on_commit_callbacks, event(account, "not an email"))
    send(api, django_capture_on_commit_callbacks, event(account, "me@example.com"))
    rows = StepRun.objects.filter(run_id=start["run_id"], node_key="ask").order_by("executed_at", "id")
    assert [(r.outcome, r.entered_via_port_key, r.exited_via_port_key) for r in rows] == [
        ("waiting", "next", None), ("waiting", "next", None), ("success", "next", "captured")]


def test_invalid_reply_with_attempts_left_reprompts_then_last_leaves_via_invalid(
        api, org, account, django_capture_on_commit_callbacks):
    ask_flow(org, {"max_retries": 2})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    first = send(api, django_capture_on_commit_callbacks, event(account, "not an email"))
    assert first["outcome"] == "resumed"
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert run.status == "waiting" and run.context["input_attempts"] == {"ask": 1}
    assert texts(start["contact_id"]) == ["Your email?", "Your email?"]  # the prompt, again
    retry_step = StepRun.objects.get(run_id=run.id, node_key="ask", outcome="waiting", exited_via_port_key=None,
                                     payload__invalid="not_an_email")
    assert retry_step.payload["attempt"] == 1
    send(api, django_capture_on_commit_callbacks, event(account, "still not"))
    run.refresh_from_db()
    assert run.status == "completed"
    assert texts(start["contact_id"])[-1] == "Giving up"
    assert "ask" not in run.context.get("input_attempts", {})


def test_single_attempt_default_leaves_via_invalid_at_once(api, org, account, django_capture_on_commit_callbacks):
    ask_flow(org, {})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    send(api, django_capture_on_commit_callbacks, event(account, "nope"))
    assert texts(start["contact_id"]) == ["Your email?", "Giving up"]


def test_skip_when_allowed(api, org, account, django_capture_on_commit_callbacks):
    automation = ask_flow(org, {"skip_allowed": True}, after=[("skipped", "end", {"reason": "skipped_email"})])
    graph = automation.graph
    graph["edges"].append({"from_node": "ask", "from_port": "skip", "to_node": "skipped", "to_port": "in"})
    automation.graph = graph
    automation.save()
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    send(api, django_capture_on_commit_callbacks, event(account, "Skip"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.exit_reason) == ("completed", "skipped_email")


def button_flow(org, button_id="big", keyword="start", **flow_overrides):
    nodes = [("ask", "message", {"blocks": [{"type": "text", "text": f"Pick ({keyword})", "buttons": [
                 {"id": button_id, "type": "branch", "label": "Big one"}]}],
              "quick_replies": [{"id": "later", "label": "Later"}]}),
             ("chosen", "message", {"blocks": [{"type": "text", "text": f"{keyword}: chose {button_id}"}]}),
             ("later", "end", {"reason": "later"})]
    edges = [("ask", f"button.{button_id}", "chosen"), ("ask", "quick_reply.later", "later")]
    automation = active_flow(org, nodes, edges, **flow_overrides)
    make_entrypoint(automation, config={"keywords": [keyword]})
    return automation


def test_button_tap_goes_to_the_run_with_that_port_only(api, org, account, django_capture_on_commit_callbacks):
    button_flow(org, "big", "one")
    button_flow(org, "small", "two")
    run_one = send(api, django_capture_on_commit_callbacks, event(account, "one"))["run_id"]
    run_two = send(api, django_capture_on_commit_callbacks, event(account, "two"))["run_id"]
    tap = send(api, django_capture_on_commit_callbacks,
               event(account, None, interactive={"type": "button", "id": "small"}))
    assert tap["outcome"] == "resumed" and tap["run_id"] == run_two
    assert AutomationRun.objects.get(pk=run_one).status == "waiting"
    assert AutomationRun.objects.get(pk=run_two).status == "completed"
    assert AutomationRun.objects.get(pk=run_two).context["last_button"]["id"] == "small"


def test_one_tap_resumes_only_the_oldest_of_two_matching_runs(api, org, account,
                                                              django_capture_on_commit_callbacks):
    button_flow(org, "big", "one")
    button_flow(org, "big", "two")
    older = send(api, django_capture_on_commit_callbacks, event(account, "one"))["run_id"]
    newer = send(api, django_capture_on_commit_callbacks, event(account, "two"))["run_id"]
    tap = send(api, django_capture_on_commit_callbacks, event(account, None, interactive={"type": "button",
                                                                                          "id": "big"}))
    assert tap["run_id"] == older
    assert AutomationRun.objects.get(pk=newer).status == "waiting"


def test_quick_reply_and_typed_label(api, org, account, django_capture_on_commit_callbacks):
    button_flow(org)
    first = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    send(api, django_capture_on_commit_callbacks, event(account, None, interactive={"type": "quick_reply",
                                                                                    "id": "later"}))
    assert AutomationRun.objects.get(pk=first["run_id"]).exit_reason == "later"
    AutomationRun.objects.filter(pk=first["run_id"]).update(completed_at="2020-01-01T00:00:00Z")
    second = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    typed = send(api, django_capture_on_commit_callbacks, event(account, "big ONE"))
    assert typed["outcome"] == "resumed" and typed["run_id"] == second["run_id"]
    assert AutomationRun.objects.get(pk=second["run_id"]).status == "completed"


def test_tap_matching_no_run_falls_through_to_matcher(api, org, account, django_capture_on_commit_callbacks):
    body = send(api, django_capture_on_commit_callbacks, event(account, None, interactive={"type": "button",
                                                                                           "id": "ghost"}))
    assert body["outcome"] == "no_match"


def test_wait_for_reply_resumes_via_next(api, org, account, django_capture_on_commit_callbacks):
    automation = active_flow(org, [
        ("q", "message", {"blocks": [{"type": "text", "text": "Anything else?"}], "wait_for_reply": True,
                          "no_response_timeout_min": 60}),
        ("a", "message", {"blocks": [{"type": "text", "text": "You said: {{context.last_reply}}"}]}),
    ], [("q", "next", "a")])
    make_entrypoint(automation, config={"keywords": ["start"]})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    job = ScheduledJob.objects.get(run_id=start["run_id"])
    send(api, django_capture_on_commit_callbacks, event(account, "a pony"))
    assert texts(start["contact_id"]) == ["Anything else?", "You said: a pony"]
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_a_message_without_blocks_only_waits_for_the_reply(api, org, account, django_capture_on_commit_callbacks):
    automation = active_flow(org, [
        ("hello", "message", {"blocks": [{"type": "text", "text": "What is your name?"}]}),
        ("listen", "message", {"wait_for_reply": True}),
        ("a", "message", {"blocks": [{"type": "text", "text": "Nice to meet you, {{context.last_reply}}"}]}),
    ], [("hello", "next", "listen"), ("listen", "next", "a")])
    make_entrypoint(automation, config={"keywords": ["start"]})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert (run.status, run.current_node_key, run.waiting_for) == ("waiting", "listen", "reply")
    listen = StepRun.objects.get(run_id=run.pk, node_key="listen")
    assert listen.outcome == "waiting" and "message_id" not in listen.payload
    assert texts(start["contact_id"]) == ["What is your name?"]
    assert send(api, django_capture_on_commit_callbacks, event(account, "Bob"))["outcome"] == "resumed"
    assert texts(start["contact_id"]) == ["What is your name?", "Nice to meet you, Bob"]


def test_wait_event_resumes_on_listed_kind_only(api, org, account, django_capture_on_commit_callbacks):
    automation = active_flow(org, [
        ("hello", "message", {"blocks": [{"type": "text", "text": "Comment on our post!"}]}),
        ("wait", "wait_event", {"event_kinds": ["comment_created"], "timeout_min": 60}),
        ("thanks", "message", {"blocks": [{"type": "text", "text": "Thanks for the comment"}]}),
    ], [("hello", "next", "wait"), ("wait", "received", "thanks")])
    make_entrypoint(automation, config={"keywords": ["start"]})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    dm = send(api, django_capture_on_commit_callbacks, event(account, "a dm"))
    assert dm["outcome"] == "no_match"
    comment = send(api, django_capture_on_commit_callbacks, event(account, "nice", kind="comment_created",
                                                                  post_id="p1"))
    assert comment["outcome"] == "resumed" and comment["run_id"] == start["run_id"]
    run = AutomationRun.objects.get(pk=start["run_id"])
    assert run.status == "completed" and run.context["last_event"]["kind"] == "comment_created"


def test_paused_contact_run_is_not_resumed_by_reply(api, org, account, django_capture_on_commit_callbacks):
    ask_flow(org, {})
    start = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    person = Contact.objects.get(pk=start["contact_id"])
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/v1/contacts/{person.id}/automation-pause", {"pause_reason": "manual_takeover"}, format="json")
    reply = send(api, django_capture_on_commit_callbacks, event(account, "me@example.com"))
    run = AutomationRun.objects.get(pk=start["run_id"])
    # The reply is captured (the input node was already waiting), but the next node visit parks the run.
    assert reply["outcome"] == "resumed"
    assert (run.status, run.waiting_for) == ("waiting", "external_event")
    assert texts(person.id) == ["Your email?"]


def test_conversation_end_to_end_through_inbound_events_alone(api, org, account,
                                                              django_capture_on_commit_callbacks):
    """keyword → questions → captured answers → branch by button → end."""
    automation = active_flow(org, [
        ("hi", "message", {"blocks": [{"type": "text", "text": "Hi {{contact.name}}! What's your email?"}]}),
        ("email", "input", {"field": "email", "input_type": "email", "max_retries": 2}),
        ("qty_q", "message", {"blocks": [{"type": "text", "text": "How many?"}]}),
        ("qty", "input", {"field": "qty", "input_type": "number", "validation": {"min": 1, "max": 5}}),
        ("size", "message", {"blocks": [{"type": "text", "text": "{{context.qty}} for {{context.email}}. Size?",
                                         "buttons": [{"id": "s", "type": "branch", "label": "Small"},
                                                     {"id": "l", "type": "branch", "label": "Large"}]}]}),
        ("big", "end", {"reason": "ordered_large"}),
        ("small", "end", {"reason": "ordered_small"}),
        ("bad", "end", {"reason": "bad_quantity"}),
    ], [("hi", "next", "email"), ("email", "captured", "qty_q"), ("qty_q", "next", "qty"),
        ("qty", "captured", "size"), ("qty", "invalid", "bad"), ("size", "button.l", "big"),
        ("size", "button.s", "small")])
    make_entrypoint(automation, config={"keywords": ["order"], "match_mode": "exact"})

    outcomes = [send(api, django_capture_on_commit_callbacks, event(account, text, **extra))["outcome"]
                for text, extra in [("Order", {}), ("alice@example", {}), ("alice@example.com", {}), ("3", {}),
                                    (None, {"interactive": {"type": "button", "id": "l"}})]]
    assert outcomes == ["enrolled", "resumed", "resumed", "resumed", "resumed"]
    run = AutomationRun.objects.get(automation=automation)
    assert (run.status, run.exit_reason) == ("completed", "ordered_large")
    assert run.context["email"] == "alice@example.com" and run.context["qty"] == 3
    assert texts(run.contact_id) == ["Hi Alice! What's your email?", "Hi Alice! What's your email?", "How many?",
                                     "3 for alice@example.com. Size?"]
    assert list(StepRun.objects.filter(run_id=run.id).order_by("executed_at", "id")
                .values_list("node_key", "exited_via_port_key")) == [
        ("hi", "next"), ("email", None), ("email", None), ("email", "captured"), ("qty_q", "next"), ("qty", None),
        ("qty", "captured"), ("size", None), ("size", "button.l"), ("big", None)]
