"""`end`: finishing the run with its reason, its (absent) ports and config checks."""

import pytest

from tests.automations.nodes.helpers import codes, errors, ports, run_flow

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_end_defaults_to_completed(org, contact, conv):
    run = run_flow(org, contact, [("stop", "end", {})])
    assert (run.status, run.exit_reason) == ("completed", "completed")


def test_end_ports():
    assert ports("end", {}) == []


def test_end_config_and_reason():
    assert errors("end", {}) == []
    assert errors("end", None) == []
    assert codes(errors("end", {"reason": ""})) == ["invalid_config"]
    assert codes(errors("end", {"reason": "x" * 101})) == ["invalid_config"]
    from automations.nodes.end import reason

    assert reason({}) == "completed" and reason({"reason": "bought"}) == "bought"
