"""`goto`: jumping to its target, its (absent) ports and config checks."""

import pytest

from tests.automations.nodes.helpers import codes, errors, ports, run_flow, steps_of

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_goto_jumps_to_its_target(org, contact, conv):
    run = run_flow(org, contact, [("jump", "goto", {"target_node_key": "far"}), ("near", "end", {"reason": "near"}),
                                  ("far", "end", {"reason": "far"})])
    assert run.exit_reason == "far"
    assert [s.node_key for s in steps_of(run)] == ["jump", "far"]


def test_goto_to_a_missing_node_completes(org, contact, conv):
    run = run_flow(org, contact, [("jump", "goto", {"target_node_key": "gone"})])
    assert (run.status, run.exit_reason, run.current_node_key) == ("completed", "completed", "jump")


def test_goto_ports():
    assert ports("goto", {}) == []


def test_goto_config_needs_a_target():
    assert codes(errors("goto", {})) == ["invalid_config"]
