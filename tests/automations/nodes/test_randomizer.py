"""`randomizer`: picking a variant by weight, sticky within a run, its ports and config checks."""

import pytest

from tests.automations.nodes.helpers import codes, errors, ports, run_flow, steps_of, warnings

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_randomizer_picks_by_weight_and_stores_the_pick(org, contact, conv):
    variants = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1e-9}]}
    run = run_flow(org, contact, [("split", "randomizer", variants)])
    assert run.current_port_key == "variant.a"
    assert run.context["_randomizer"] == {"split": "a"}


def test_randomizer_is_sticky_within_a_run(org, contact, conv):
    variants = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1e-9}]}
    run = run_flow(org, contact, [("split", "randomizer", variants)], context={"_randomizer": {"split": "b"}})
    step = steps_of(run)[0]
    assert (run.current_port_key, step.payload) == ("variant.b", {"variant": "b", "reused": True})


def test_randomizer_ports_per_variant():
    config = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 3}]}
    assert ports("randomizer", config) == ["variant.a", "variant.b"]


@pytest.mark.parametrize("config, code", [
    ({}, "invalid_config"),
    ({"variants": []}, "invalid_config"),
    ({"variants": [{"key": "a", "weight": 0}, {"key": "b", "weight": 1}]}, "invalid_weight"),
    ({"variants": [{"key": "a", "weight": -1}, {"key": "b", "weight": 1}]}, "invalid_weight"),
    ({"variants": [{"key": "a", "weight": "1"}, {"key": "b", "weight": 1}]}, "invalid_weight"),
    ({"variants": [{"key": "a", "weight": 1}, {"key": "a", "weight": 1}]}, "duplicate_id"),
    ({"variants": [{"key": "a b", "weight": 1}]}, "invalid_id"),
])
def test_randomizer_errors(config, code):
    assert code in codes(errors("randomizer", config))


def test_single_variant_is_a_warning():
    assert codes(warnings("randomizer", {"variants": [{"key": "a", "weight": 1}]})) == ["single_variant"]
