"""Graph-level validator rules (each failing and passing) and save_graph's auto-pause."""

import copy

import pytest

from automations.graph.service import save_graph
from automations.graph.validator import validate_graph
from automations.models import Automation
from tests import factories


def msg(key, **config):
    return {"key": key, "kind": "message", "config": {"blocks": [{"type": "text", "text": key}], **config}}


def node(key, kind, **config):
    return {"key": key, "kind": kind, "config": config}


def edge(a, port, b, to_port="in"):
    return {"from_node": a, "from_port": port, "to_node": b, "to_port": to_port}


def good_graph():
    return {
        "root_node_key": "greet",
        "nodes": [
            msg("greet", blocks=[{"type": "text", "text": "Size?", "buttons": [
                {"id": "large", "type": "branch", "label": "Large"}]}]),
            node("ask", "input", field="email", input_type="email"),
            node("tag", "action_group", actions=[{"id": "1", "type": "tag_add", "tag": "lead"}]),
            node("bye", "end", reason="done"),
        ],
        "edges": [edge("greet", "button.large", "ask"), edge("ask", "captured", "tag"), edge("tag", "next", "bye")],
    }


def codes(found):
    return sorted(i["code"] for i in found)


def check(graph, automation=None):
    return validate_graph(graph, automation=automation)


def test_good_graph_is_valid_and_ports_are_derived():
    normalized, errors, warnings = check(good_graph())
    assert errors == [] and warnings == []
    ports = {n["key"]: n["ports"] for n in normalized["nodes"]}
    assert ports == {"greet": ["next", "error", "button.large"], "ask": ["captured", "invalid", "timeout"],
                     "tag": ["next", "error"], "bye": []}


def test_client_ports_and_unknown_node_fields_are_ignored():
    graph = good_graph()
    graph["nodes"][0]["ports"] = ["made_up"]
    graph["nodes"][0]["title"] = "Greeting"
    graph["nodes"][0]["canvas_x"] = 10
    graph["nodes"][0]["ui_state"] = {"collapsed": True}
    graph["nodes"][0]["hacker"] = "x"
    normalized, errors, _ = check(graph)
    assert errors == []
    first = normalized["nodes"][0]
    assert first["ports"] == ["next", "error", "button.large"]
    assert first["title"] == "Greeting" and first["canvas_x"] == 10 and first["ui_state"] == {"collapsed": True}
    assert "hacker" not in first


def test_an_edge_to_a_client_invented_port_is_an_error():
    graph = good_graph()
    graph["nodes"][1]["ports"] = ["captured", "invalid", "timeout", "skip"]  # skip_allowed is not set
    graph["edges"].append(edge("ask", "skip", "bye"))
    assert codes(check(graph)[1]) == ["edge_unknown_port"]


@pytest.mark.parametrize("graph, code", [
    ("nope", "invalid_graph"),
    ({"nodes": "x", "edges": [], "root_node_key": None}, "invalid_graph"),
    ({"nodes": [], "edges": {}, "root_node_key": None}, "invalid_graph"),
])
def test_malformed_graphs(graph, code):
    assert code in codes(check(graph)[1])


def test_invalid_nodes_are_reported():
    graph = good_graph()
    graph["nodes"] += ["string", {"kind": "end"}, {"key": "", "kind": "end"}, {"key": "x" * 101, "kind": "end"}]
    assert codes(check(graph)[1]) == ["invalid_node"] * 4


def test_unique_keys():
    graph = good_graph()
    graph["nodes"].append(node("bye", "end"))
    _, errors, _ = check(graph)
    assert codes(errors) == ["duplicate_node_key"] and errors[0]["node_key"] == "bye"


def test_unknown_kind():
    graph = good_graph()
    graph["nodes"].append(node("zap", "teleport"))
    graph["edges"].append(edge("tag", "error", "zap"))
    assert codes(check(graph)[1]) == ["unknown_kind"]


def test_per_kind_config_errors_carry_the_node_key():
    graph = good_graph()
    graph["nodes"][1]["config"]["input_type"] = "date"
    _, errors, _ = check(graph)
    assert errors == [{"code": "invalid_config", "node_key": "ask", "message": errors[0]["message"]}]


def test_per_kind_warnings_go_to_warnings():
    graph = good_graph()
    graph["nodes"][2]["config"]["colour"] = "red"
    _, errors, warnings = check(graph)
    assert errors == [] and codes(warnings) == ["unknown_config_key"] and warnings[0]["node_key"] == "tag"
    assert "severity" not in warnings[0]


@pytest.mark.parametrize("bad_edge, code", [
    (edge("ghost", "next", "bye"), "edge_unknown_source"),
    (edge("tag", "sideways", "bye"), "edge_unknown_port"),
    (edge("tag", "error", "ghost"), "edge_unknown_target"),
    (edge("tag", "error", "bye", to_port="out"), "edge_invalid_target_port"),
    (edge("tag", "next", "ask"), "duplicate_edge_port"),
    ({"from_node": "tag", "from_port": "error"}, "invalid_edge"),
    ("edge", "invalid_edge"),
])
def test_edge_rules(bad_edge, code):
    graph = good_graph()
    graph["edges"].append(bad_edge)
    assert code in codes(check(graph)[1])


def test_edge_port_error_names_node_and_port():
    graph = good_graph()
    graph["edges"].append(edge("tag", "sideways", "bye"))
    found = check(graph)[1][0]
    assert found["node_key"] == "tag" and found["port"] == "sideways"


def test_to_port_defaults_to_in():
    graph = good_graph()
    del graph["edges"][0]["to_port"]
    normalized, errors, _ = check(graph)
    assert errors == [] and normalized["edges"][0]["to_port"] == "in"


def test_root_rules():
    graph = good_graph()
    graph["root_node_key"] = None
    assert codes(check(graph)[1]) == ["root_missing"]
    graph["root_node_key"] = "ghost"
    assert codes(check(graph)[1]) == ["root_unknown"]
    assert codes(check({"nodes": [], "edges": [], "root_node_key": None})[1]) == ["root_missing"]


@pytest.mark.parametrize("kind, config", [
    ("input", {"field": "x"}),
    ("delay", {"minutes": 1}),
    ("wait_event", {"event_kinds": ["dm_received"]}),
    ("randomizer", {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1}]}),
    ("goto", {"target_node_key": "bye"}),
])
def test_root_may_not_be_a_waiting_random_or_goto_node(kind, config):
    graph = good_graph()
    graph["nodes"].append(node("first", kind, **config))
    graph["root_node_key"] = "first"
    assert "root_invalid_kind" in codes(check(graph)[1])


@pytest.mark.parametrize("kind, config", [
    ("condition", {"predicates": {"all": [{"field": "tags", "op": "exists"}]}}),
    ("action_group", {"actions": [{"id": "1", "type": "tag_add", "tag": "x"}]}),
    ("http_request", {"method": "GET", "url": "https://x.test"}),
    ("start_automation", {"target_automation_id": "auto_x"}),
    ("end", {}),
])
def test_root_may_be_these_kinds(kind, config):
    graph = good_graph()
    graph["nodes"].append(node("first", kind, **config))
    graph["root_node_key"] = "first"
    ports = {"condition": "true", "action_group": "next", "http_request": "success", "start_automation": "next"}
    if kind in ports:
        graph["edges"].append(edge("first", ports[kind], "greet"))
    _, errors, warnings = check(graph)
    assert errors == []
    assert warnings == ([] if kind in ports else [{"code": "unreachable_node", "node_key": k,
                                                    "message": f"Node {k!r} cannot be reached from the root."}
                                                   for k in ("greet", "ask", "tag", "bye")])


def test_goto_target_must_exist():
    graph = good_graph()
    graph["nodes"].append(node("jump", "goto", target_node_key="ghost"))
    graph["edges"].append(edge("tag", "error", "jump"))
    assert codes(check(graph)[1]) == ["goto_unknown_target"]
    graph["nodes"][-1]["config"]["target_node_key"] = "bye"
    assert check(graph)[1] == []


def test_cycle_without_pause_point_is_an_error():
    graph = {"root_node_key": "a", "nodes": [
        node("a", "action_group", actions=[{"id": "1", "type": "tag_add", "tag": "x", "on_error": "continue"}]),
        node("b", "condition", predicates={"all": [{"field": "tags", "op": "exists"}]}),
    ], "edges": [edge("a", "next", "b"), edge("b", "true", "a")]}
    _, errors, _ = check(graph)
    assert codes(errors) == ["cycle_without_pause"]
    assert errors[0]["node_key"] == "a" and "a, b" in errors[0]["message"]


def test_cycle_through_a_goto_jump_counts():
    graph = {"root_node_key": "a", "nodes": [
        msg("a"), node("jump", "goto", target_node_key="a"),
    ], "edges": [edge("a", "next", "jump")]}
    assert codes(check(graph)[1]) == ["cycle_without_pause"]


def test_self_loop_without_pause_is_an_error():
    graph = {"root_node_key": "a", "nodes": [msg("a")], "edges": [edge("a", "error", "a")]}
    assert codes(check(graph)[1]) == ["cycle_without_pause"]


@pytest.mark.parametrize("pause_node, port", [
    (node("p", "delay", minutes=1), "next"),
    (node("p", "input", field="x"), "captured"),
    (node("p", "wait_event", event_kinds=["dm_received"]), "received"),
    (msg("p", wait_for_reply=True), "next"),
    (msg("p", quick_replies=[{"id": "again", "label": "Again"}]), "quick_reply.again"),
])
def test_cycle_with_a_pause_point_is_fine(pause_node, port):
    graph = {"root_node_key": "a", "nodes": [msg("a"), pause_node, node("jump", "goto", target_node_key="a")],
             "edges": [edge("a", "next", "p"), edge("p", port, "jump")]}
    assert check(graph)[1] == []


def test_unreachable_nodes_are_warnings():
    graph = good_graph()
    graph["nodes"].append(node("orphan", "end"))
    graph["nodes"].append(node("island", "goto", target_node_key="orphan"))
    _, errors, warnings = check(graph)
    assert errors == []
    assert codes(warnings) == ["unreachable_node", "unreachable_node"]
    assert {w["node_key"] for w in warnings} == {"orphan", "island"}


def test_goto_makes_its_target_reachable():
    graph = good_graph()
    graph["nodes"].append(node("late", "end"))
    graph["nodes"].append(node("jump", "goto", target_node_key="late"))
    graph["edges"].append(edge("tag", "error", "jump"))
    assert check(graph)[2] == []


def test_start_automation_is_checked_against_the_automation(org):
    me = factories.automation(org)
    graph = {"root_node_key": "s", "nodes": [node("s", "start_automation", target_automation_id=me.id)],
             "edges": []}
    assert codes(check(graph, me)[1]) == ["start_automation_self"]


# --- save_graph ----------------------------------------------------------------------------------------

def test_save_graph_stores_normalized_graph_errors_and_warnings(org):
    automation = factories.automation(org)
    graph = good_graph()
    graph["nodes"].append(node("orphan", "end"))
    assert save_graph(automation, graph) is False
    stored = Automation.objects.get(pk=automation.pk)
    assert stored.graph["nodes"][0]["ports"] == ["next", "error", "button.large"]
    assert stored.graph_errors == [] and codes(stored.graph_warnings) == ["unreachable_node"]


def test_invalid_graph_is_stored_with_its_errors(org):
    automation = factories.automation(org)
    graph = good_graph()
    graph["edges"].append(edge("tag", "sideways", "bye"))
    assert save_graph(automation, graph) is False
    stored = Automation.objects.get(pk=automation.pk)
    assert codes(stored.graph_errors) == ["edge_unknown_port"]
    assert len(stored.graph["edges"]) == 4 and stored.status == "draft"


def test_saving_an_invalid_graph_auto_pauses_an_active_automation(org):
    automation = factories.automation(org, status="active")
    broken = copy.deepcopy(good_graph())
    broken["root_node_key"] = "ask"
    assert save_graph(automation, broken) is True
    stored = Automation.objects.get(pk=automation.pk)
    assert stored.status == "paused" and codes(stored.graph_errors) == ["root_invalid_kind"]


def test_saving_a_valid_graph_keeps_an_active_automation_active(org):
    automation = factories.automation(org, status="active")
    assert save_graph(automation, good_graph()) is False
    assert Automation.objects.get(pk=automation.pk).status == "active"


def test_saving_an_invalid_graph_does_not_touch_a_paused_or_draft_status(org):
    for status in ("draft", "paused"):
        automation = factories.automation(org, status=status)
        assert save_graph(automation, {"nodes": [], "edges": [], "root_node_key": None}) is False
        assert Automation.objects.get(pk=automation.pk).status == status
