"""Output ports derived per kind (SPEC §3): these are the port names edges and the runtime use."""

import pytest

from automations.nodes import registry


def ports(kind, config):
    return registry.get(kind).derive_ports(config)


def test_registry_knows_the_eleven_kinds_and_rejects_others():
    assert len(registry.KINDS) == 11
    for kind in registry.KINDS:
        module = registry.get(kind)
        assert callable(module.derive_ports) and callable(module.validate)
    with pytest.raises(KeyError):
        registry.get("teleport")
    assert registry.derive_ports("teleport", {}) == []


def test_message_ports_buttons_quick_replies_and_no_response():
    config = {
        "blocks": [
            {"type": "text", "text": "Size?", "buttons": [
                {"id": "large", "type": "branch", "label": "L"},
                {"id": "site", "type": "url", "label": "Site", "url": "https://x.test"},
            ]},
            {"type": "card", "title": "C", "buttons": [{"id": "card_buy", "type": "branch", "label": "Buy"}]},
            {"type": "gallery", "cards": [{"title": "G", "buttons": [{"id": "g1", "type": "branch", "label": "1"}]}]},
        ],
        "quick_replies": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
        "no_response_timeout_min": 30,
    }
    assert ports("message", config) == ["next", "error", "button.large", "button.card_buy", "button.g1",
                                        "quick_reply.yes", "quick_reply.no", "no_response"]


def test_plain_message_has_next_and_error_only():
    assert ports("message", {"blocks": [{"type": "text", "text": "hi"}]}) == ["next", "error"]
    assert ports("message", {"blocks": [{"type": "text", "text": "hi"}], "wait_for_reply": True}) == ["next", "error"]


def test_message_ports_tolerate_garbage():
    assert ports("message", "nonsense") == ["next", "error"]
    assert ports("message", {"blocks": [3, {"type": "text", "buttons": "x"}], "quick_replies": [None]}) == \
        ["next", "error"]


def test_input_ports_skip_only_when_allowed():
    assert ports("input", {"field": "email"}) == ["captured", "invalid", "timeout"]
    assert ports("input", {"field": "email", "skip_allowed": True, "timeout_min": 5}) == \
        ["captured", "invalid", "timeout", "skip"]


@pytest.mark.parametrize("kind, expected", [
    ("delay", ["next"]),
    ("wait_event", ["received", "timeout", "error"]),
    ("condition", ["true", "false"]),
    ("http_request", ["success", "error"]),
    ("start_automation", ["next", "error"]),
    ("goto", []),
    ("end", []),
])
def test_fixed_ports(kind, expected):
    assert ports(kind, {}) == expected


def test_randomizer_ports_per_variant():
    config = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 3}]}
    assert ports("randomizer", config) == ["variant.a", "variant.b"]


def test_action_group_error_port_iff_an_action_aborts():
    aborting = {"actions": [{"id": "1", "type": "tag_add", "tag": "x"}]}  # on_error defaults to abort
    continuing = {"actions": [{"id": "1", "type": "tag_add", "tag": "x", "on_error": "continue"}]}
    mixed = {"actions": [continuing["actions"][0], {"id": "2", "type": "tag_remove", "tag": "y", "on_error": "abort"}]}
    assert ports("action_group", aborting) == ["next", "error"]
    assert ports("action_group", continuing) == ["next"]
    assert ports("action_group", mixed) == ["next", "error"]
    assert ports("action_group", {"actions": []}) == ["next"]


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
