"""`input`: waiting for the contact's answer, validating it by type, its ports and config checks, and how
it answers a reply (captured, skip, asked again, invalid)."""

from datetime import timedelta

import pytest

from automations.models import ExitReason, JobKind, ScheduledJob, WaitingFor
from automations.nodes import input as input_node
from automations.nodes.base import InboundReply, NodeContext
from automations.nodes.input import evaluate_input, normalise_phone
from automations.runtime.resume import resume_waiting
from tests.automations.nodes.helpers import NOW, codes, errors, ports, run_flow, steps_of

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_input_waits_with_timeout_and_captures_through_resume(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "input_type": "email", "timeout_min": 10}),
                                  ("ok", "end", {})], [("ask", "captured", "ok")], now=NOW)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "input", NOW + timedelta(minutes=10))
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.due_at, job.payload) == ("input_timeout", NOW + timedelta(minutes=10),
                                                  {"node_key": "ask", "port_key": "timeout"})
    assert steps_of(run)[0].payload["field"] == "email"
    assert resume_waiting(run, "captured", context_updates={"email": "a@b.co"})
    run.refresh_from_db()
    assert (run.status, run.context) == ("completed", {"email": "a@b.co"})


def test_input_ports_skip_only_when_allowed():
    assert ports("input", {"field": "email"}) == ["captured", "invalid", "timeout"]
    assert ports("input", {"field": "email", "skip_allowed": True, "timeout_min": 5}) == \
        ["captured", "invalid", "timeout", "skip"]


@pytest.mark.parametrize("config, code", [
    ({}, "invalid_config"),
    ({"field": "has space"}, "invalid_config"),
    ({"field": "x", "input_type": "date"}, "invalid_config"),
    ({"field": "x", "max_retries": 0}, "invalid_config"),
    ({"field": "x", "timeout_min": -1}, "invalid_config"),
    ({"field": "x", "skip_allowed": "sure"}, "invalid_config"),
    ({"field": "x", "input_type": "choice"}, "invalid_config"),
    ({"field": "x", "input_type": "choice", "choices": [{"label": "no value"}]}, "invalid_config"),
    ({"field": "x", "input_type": "choice", "choices": [{"value": "small", "label": "S", "match": ["s"]},
                                                        {"value": "Small"}]}, "ambiguous_choice"),
    ({"field": "x", "input_type": "choice", "choices": [{"value": "s", "match": ["big"]},
                                                        {"value": "l", "match": ["BIG"]}]}, "ambiguous_choice"),
    ({"field": "x", "validation": {"min": 5, "max": 1}}, "invalid_config"),
    ({"field": "x", "validation": {"pattern": "^(?=x)"}}, "invalid_regex"),
    ({"field": "x", "validation": {"pattern": "["}}, "invalid_regex"),
    ({"field": "x", "input_type": "file", "max_size_mb": 0}, "invalid_config"),
    ({"field": "x", "input_type": "file", "accepted_mime_types": "image/png"}, "invalid_config"),
])
def test_input_errors(config, code):
    assert code in codes(errors("input", config))


def test_unambiguous_choices_are_valid():
    config = {"field": "size", "input_type": "choice",
              "choices": [{"value": "s", "label": "Small", "match": ["sm", "1"]},
                          {"value": "l", "label": "Large", "match": ["lg", "2"]}],
              "validation": {"pattern": r"^\w{1,5}$"}}
    assert errors("input", config) == []


# -- validating a reply ---------------------------------------------------------------------------------


CHOICES = [{"value": "s", "label": "Small", "match": ["tiny", "sm"]}, {"value": "l", "label": "Large"}]


@pytest.mark.parametrize("config,text,attachments,expected", [
    ({"input_type": "text"}, " hello ", [], (True, "hello")),
    ({"input_type": "text"}, "   ", [], (False, None)),
    ({"input_type": "text", "validation": {"pattern": r"^\d{4}$"}}, "12a4", [], (False, None)),
    ({"input_type": "email"}, "Alice@Example.com", [], (True, "alice@example.com")),
    ({"input_type": "email"}, "alice@", [], (False, None)),
    ({"input_type": "phone"}, "+44 (20) 7946-0958", [], (True, "+442079460958")),
    ({"input_type": "phone"}, "0044 20 7946 0958", [], (True, "+442079460958")),
    ({"input_type": "phone"}, "12", [], (False, None)),
    ({"input_type": "number", "validation": {"min": 1, "max": 10}}, "7", [], (True, 7)),
    ({"input_type": "number", "validation": {"min": 1, "max": 10}}, "2,5", [], (True, 2.5)),
    ({"input_type": "number", "validation": {"min": 1, "max": 10}}, "11", [], (False, None)),
    ({"input_type": "number"}, "seven", [], (False, None)),
    ({"input_type": "choice", "choices": CHOICES}, "LARGE", [], (True, "l")),
    ({"input_type": "choice", "choices": CHOICES}, "tiny", [], (True, "s")),
    ({"input_type": "choice", "choices": CHOICES}, "S", [], (True, "s")),
    ({"input_type": "choice", "choices": CHOICES}, "medium", [], (False, None)),
    ({"input_type": "file", "accepted_mime_types": ["image/*"], "max_size_mb": 1}, "",
     [{"mime_type": "image/png", "size_bytes": 1000, "url": "u"}], (True, {"mime_type": "image/png",
                                                                       "size_bytes": 1000, "url": "u"})),
    ({"input_type": "file", "accepted_mime_types": ["image/*"]}, "", [{"mime_type": "application/pdf"}],
     (False, None)),
    ({"input_type": "file", "max_size_mb": 1}, "", [{"mime_type": "image/png", "size_bytes": 2_000_000}],
     (False, None)),
    ({"input_type": "file"}, "no file here", [], (False, None)),
])
def test_input_validation_by_type(config, text, attachments, expected):
    valid, value, reason = evaluate_input(config, InboundReply(kind="dm_received", text=text,
                                                               attachments=attachments))
    assert (valid, value) == expected
    assert (reason is None) == valid


def test_phone_normalisation_rejects_numbers_without_country_code():
    assert normalise_phone("020 7946 0958") is None


# -- its wait and answers ------------------------------------------------------------------------------


def test_its_wait_times_out_through_timeout_and_exits_input_timeout_when_unwired():
    wait = input_node.WAIT
    assert (wait.waiting_for, wait.timeout_job, wait.timeout_port, wait.exit_if_unwired) == (
        WaitingFor.INPUT, JobKind.INPUT_TIMEOUT, "timeout", ExitReason.INPUT_TIMEOUT)
    assert not input_node.MAY_BE_ROOT


def answer(config, reply, context=None):
    node = {"key": "ask", "kind": "input", "config": config}
    ctx = NodeContext(node=node, run=None, context=context or {}, contact=None, automation=None, effects=None,
                      now=NOW, ports=input_node.derive_ports(config))
    return input_node.answer(ctx, reply)


def test_a_valid_reply_is_captured_into_its_field_and_clears_the_attempts():
    found = answer({"field": "email", "input_type": "email"}, InboundReply("dm_received", text="A@B.co"),
                   context={"input_attempts": {"ask": 1, "other": 2}})
    assert found.port == "captured"
    assert found.context_updates == {"email": "a@b.co", "input_attempts": {"other": 2}}
    assert (found.payload["captured"], found.payload["attempt"]) == ("a@b.co", 2)


def test_an_invalid_reply_is_asked_again_until_the_attempts_are_used_up():
    config = {"field": "email", "input_type": "email", "max_retries": 2}
    first = answer(config, InboundReply("dm_received", text="nope"))
    assert (first.port, first.context_updates) == (None, {"input_attempts": {"ask": 1}})
    assert (first.payload["invalid"], first.payload["attempt"], first.payload["max_attempts"]) == (
        "not_an_email", 1, 2)
    last = answer(config, InboundReply("dm_received", text="nope"), context=first.context_updates)
    assert (last.port, last.context_updates) == ("invalid", {"input_attempts": {}})


def test_skip_taps_and_events_that_are_not_replies():
    assert answer({"field": "x", "skip_allowed": True}, InboundReply("dm_received", text=" Skip ")).port == "skip"
    assert answer({"field": "x"}, InboundReply("dm_received", text="skip")).port == "captured"  # no skip port
    assert answer({"field": "x"}, InboundReply("dm_received", interactive_type="button", interactive_id="b")) is None
    assert answer({"field": "x"}, InboundReply("comment_created", text="hello")) is None
