"""The registry and the contract every kind keeps: the eleven kinds, a valid config for each, configs
as objects, and what the runtime derives from the kinds' declarations (pause points, root kinds,
terminal kinds, the waits an inbound event may end, the jobs that end a wait)."""

import pytest

from automations.models import ExitReason, JobKind, WaitingFor
from automations.nodes import registry
from tests.automations.nodes.helpers import VALID, codes, errors, warnings


def test_registry_knows_the_eleven_kinds_and_rejects_others():
    assert len(registry.KINDS) == 11
    for kind in registry.KINDS:
        module = registry.get(kind)
        assert callable(module.derive_ports) and callable(module.validate)
    with pytest.raises(KeyError):
        registry.get("teleport")
    assert registry.derive_ports("teleport", {}) == []


@pytest.mark.parametrize("kind", registry.KINDS)
def test_valid_configs_have_no_errors(kind):
    assert errors(kind, VALID[kind]) == []


@pytest.mark.parametrize("kind", [k for k in registry.KINDS if k != "end"])
def test_config_must_be_an_object(kind):
    assert "invalid_config" in codes(errors(kind, ["not", "an", "object"]))


def test_unknown_config_keys_are_warnings():
    assert codes(warnings("delay", {"minutes": 1})) == []
    found = warnings("wait_event", {**VALID["wait_event"], "colour": "red"})
    assert codes(found) == ["unknown_config_key"]


@pytest.mark.parametrize("node, waits", [
    ({"kind": "input", "config": {}}, True),
    ({"kind": "delay", "config": {}}, True),
    ({"kind": "wait_event", "config": {}}, True),
    ({"kind": "message", "config": {"blocks": [{"type": "text", "text": "x"}]}}, False),
    ({"kind": "message", "config": {"wait_for_reply": True}}, True),
    ({"kind": "message", "config": {"quick_replies": [{"id": "a", "label": "A"}]}}, True),
    ({"kind": "message", "config": {"blocks": [{"type": "text", "text": "x", "buttons": [
        {"id": "b", "type": "branch", "label": "B"}]}]}}, True),
    ({"kind": "message", "config": {"blocks": [{"type": "text", "text": "x", "buttons": [
        {"id": "b", "type": "url", "label": "B", "url": "https://x.test"}]}]}}, False),
    ({"kind": "condition", "config": {}}, False),
    ({"kind": "goto", "config": {}}, False),
])
def test_node_waits(node, waits):
    assert registry.node_waits(node) is waits


def test_pause_points_root_kinds_and_terminal_kinds_come_from_the_kinds():
    assert [kind for kind in registry.KINDS if not registry.may_be_root(kind)] == [
        "input", "delay", "wait_event", "randomizer", "goto"]
    assert [kind for kind in registry.KINDS if registry.is_terminal(kind)] == ["goto", "end"]
    assert registry.may_be_root("teleport") and not registry.is_terminal("teleport")
    assert registry.waits_of("teleport") == () and registry.waits_of("condition") == ()


def test_inbound_events_are_offered_to_the_waits_of_the_kinds_that_answer():
    assert set(registry.answered_waiting_for()) == {WaitingFor.REPLY, WaitingFor.DELIVERY, WaitingFor.INPUT,
                                                    WaitingFor.INBOUND_EVENT}
    assert registry.answerer("input", WaitingFor.INPUT) is registry.get("input").answer
    assert registry.answerer("input", WaitingFor.REPLY) is None  # not a way an input waits
    assert registry.answerer("delay", WaitingFor.DELAY) is None  # a delay takes no events
    assert registry.answerer("teleport", WaitingFor.INPUT) is None


def test_each_timeout_job_ends_one_declared_wait_through_its_port():
    waits = registry.timeout_waits()
    assert {kind: (wait.waiting_for, wait.timeout_port) for kind, wait in waits.items()} == {
        JobKind.RESUME_DELAY: (WaitingFor.DELAY, "next"),
        JobKind.INPUT_TIMEOUT: (WaitingFor.INPUT, "timeout"),
        JobKind.NO_RESPONSE_TIMEOUT: (WaitingFor.REPLY, "no_response"),
        JobKind.WAIT_EVENT_TIMEOUT: (WaitingFor.INBOUND_EVENT, "timeout"),
    }


@pytest.mark.parametrize(("kind", "port", "reason"), [
    ("input", "timeout", ExitReason.INPUT_TIMEOUT),
    ("wait_event", "timeout", None),
    ("message", "no_response", None),
    ("input", "captured", None),
    ("teleport", "timeout", None),
])
def test_an_unwired_port_ends_the_run_as_its_kind_says(kind, port, reason):
    assert registry.unwired_exit(kind, port) == reason
