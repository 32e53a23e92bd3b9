"""`condition`: branching on the contact and the context, its ports and config checks."""

import pytest

from tests import factories
from tests.automations.nodes.helpers import codes, errors, ports, run_flow, steps_of, warnings

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


@pytest.mark.parametrize(("tags", "port"), [(["vip"], "true"), ([], "false")])
def test_condition_branches_on_contact_and_context(org, account, tags, port):
    person = factories.contact(org, account=account, tags=tags)
    predicates = {"all": [{"field": "tags", "op": "contains", "value": "vip"},
                          {"field": "context.total", "op": "gt", "value": 40}]}
    run = run_flow(org, person, [("check", "condition", {"predicates": predicates})], context={"total": 42})
    assert (run.current_port_key, steps_of(run)[0].payload) == (port, {"result": port == "true"})


def test_condition_ports():
    assert ports("condition", {}) == ['true', 'false']


def test_condition_predicates_are_validated():
    assert codes(errors("condition", {"predicates": {"all": [{"field": "x", "op": "eq", "value": 1}]}})) == \
        ["invalid_predicates"]
    assert codes(warnings("condition", {"predicates": {}})) == ["empty_predicates"]
