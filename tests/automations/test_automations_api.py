"""Automations API: CRUD, PUT graph with derived ports and auto-pause, lifecycle actions, org scoping."""

import pytest

from automations.models import Automation
from tests import factories

pytestmark = pytest.mark.django_db


def good_graph():
    return {
        "root_node_key": "greet",
        "nodes": [
            {"key": "greet", "kind": "message", "title": "Greeting", "canvas_x": 10, "canvas_y": 20,
             "ports": ["bogus"],
             "config": {"blocks": [{"type": "text", "text": "Size?", "buttons": [
                 {"id": "large", "type": "branch", "label": "Large"}]}]}},
            {"key": "done", "kind": "end", "config": {"reason": "picked"}},
        ],
        "edges": [{"from_node": "greet", "from_port": "button.large", "to_node": "done", "to_port": "in"}],
    }


def broken_graph():
    graph = good_graph()
    graph["edges"][0]["from_port"] = "button.small"
    return graph


def create(api, **body):
    return api.post("/v1/automations", {"name": "Flow", "channel": "instagram", **body}, format="json")


def test_create_without_graph_is_a_draft_with_root_missing(api):
    response = create(api)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"].startswith("auto_") and data["status"] == "draft" and data["channel"] == "instagram"
    assert data["graph"] == {"nodes": [], "edges": [], "root_node_key": None}
    assert [e["code"] for e in data["graph_errors"]] == ["root_missing"] and data["graph_valid"] is False
    assert {k: data[k] for k in ("total_enrolled", "total_completed", "total_exited", "total_failed")} == \
        {"total_enrolled": 0, "total_completed": 0, "total_exited": 0, "total_failed": 0}
    assert data["created_at"].endswith("Z")


def test_create_with_graph_derives_ports(api):
    data = create(api, graph=good_graph()).json()
    assert data["graph_errors"] == [] and data["graph_valid"] is True
    greet = data["graph"]["nodes"][0]
    assert greet["ports"] == ["next", "error", "button.large"]
    assert greet["title"] == "Greeting"


@pytest.mark.parametrize("body, field", [
    ({"channel": "instagram"}, "name"),
    ({"name": "x", "channel": "myspace"}, "channel"),
    ({"name": "x", "channel": "instagram", "graph": {"nodes": "x"}}, "graph"),
    ({"name": "x", "channel": "instagram", "graph": {"nodes": [{"kind": "end"}]}}, "graph"),
    ({"name": "x", "channel": "instagram", "graph": {"nodes": [{"key": "a", "kind": "end", "config": []}]}}, "graph"),
])
def test_create_rejects_bad_bodies_and_writes_nothing(api, body, field):
    response = api.post("/v1/automations", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["details"]
    assert Automation.objects.count() == 0


def test_unknown_fields_are_rejected(api, org):
    response = create(api, status="active")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_field"
    response = create(api, graph={**good_graph(), "extra": 1})
    assert response.status_code == 400 and "extra" in response.json()["error"]["details"]["graph"]
    assert Automation.objects.count() == 0
    automation = factories.automation(org)
    response = api.put(f"/v1/automations/{automation.id}/graph", {**good_graph(), "extra": 1}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_field"


def test_list_newest_first_without_graph_and_filters(api, org, other_org):
    first = factories.automation(org, name="first")
    second = factories.automation(org, name="second", status="active")
    factories.automation(other_org)
    data = api.get("/v1/automations").json()
    assert [row["id"] for row in data["data"]] == [second.id, first.id]
    assert "graph" not in data["data"][0] and data["data"][0]["node_count"] == 0
    assert [row["id"] for row in api.get("/v1/automations?status=active").json()["data"]] == [second.id]
    assert api.get("/v1/automations?status=bogus").status_code == 400
    page = api.get("/v1/automations?limit=1").json()
    assert page["has_more"] is True and len(page["data"]) == 1


def test_retrieve_patch_delete(api, org):
    automation = factories.automation(org)
    assert api.get(f"/v1/automations/{automation.id}").json()["name"] == automation.name
    patched = api.patch(f"/v1/automations/{automation.id}", {"name": "Renamed"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    assert api.patch(f"/v1/automations/{automation.id}", {"channel": "telegram"}, format="json").status_code == 400
    assert api.patch(f"/v1/automations/{automation.id}", {"name": ""}, format="json").status_code == 400
    assert Automation.objects.get(pk=automation.id).name == "Renamed"
    assert api.delete(f"/v1/automations/{automation.id}").status_code == 204
    assert not Automation.objects.filter(pk=automation.id).exists()


def test_an_active_automation_cannot_be_deleted(api, org):
    automation = factories.automation(org, status="active")
    response = api.delete(f"/v1/automations/{automation.id}")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_state"
    assert Automation.objects.filter(pk=automation.id).exists()


def test_put_graph_stores_normalized_graph(api, org):
    automation = factories.automation(org)
    response = api.put(f"/v1/automations/{automation.id}/graph", good_graph(), format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["auto_paused"] is False and data["graph_errors"] == []
    assert data["graph"]["nodes"][0]["ports"] == ["next", "error", "button.large"]
    stored = Automation.objects.get(pk=automation.id)
    assert stored.graph["nodes"][0]["ports"] == ["next", "error", "button.large"]
    assert stored.graph["edges"][0]["to_port"] == "in"
    assert api.get(f"/v1/automations/{automation.id}/graph").json()["graph"] == stored.graph


def test_put_invalid_graph_is_saved_with_errors(api, org):
    automation = factories.automation(org)
    data = api.put(f"/v1/automations/{automation.id}/graph", broken_graph(), format="json").json()
    assert data["auto_paused"] is False and data["status"] == "draft"
    assert data["graph_errors"] == [{"code": "edge_unknown_port", "node_key": "greet", "port": "button.small",
                                     "message": data["graph_errors"][0]["message"]}]
    assert Automation.objects.get(pk=automation.id).graph_errors == data["graph_errors"]


def test_put_invalid_graph_auto_pauses_an_active_automation(api, org):
    automation = factories.automation(org, status="active")
    data = api.put(f"/v1/automations/{automation.id}/graph", broken_graph(), format="json").json()
    assert data["auto_paused"] is True and data["status"] == "paused"
    assert Automation.objects.get(pk=automation.id).status == "paused"


def test_put_graph_with_malformed_shape_is_400_and_writes_nothing(api, org):
    automation = factories.automation(org, status="active", graph=good_graph())
    before = Automation.objects.get(pk=automation.id).graph
    for body in ({"nodes": [{"key": "a"}]}, {"nodes": [], "edges": [{"from_node": "a"}]}, ["not", "a", "dict"],
                 {"nodes": [], "junk": 1}):
        response = api.put(f"/v1/automations/{automation.id}/graph", body, format="json")
        assert response.status_code == 400, body
    stored = Automation.objects.get(pk=automation.id)
    assert stored.graph == before and stored.status == "active"


def test_archived_graph_cannot_be_changed(api, org):
    automation = factories.automation(org, status="archived")
    response = api.put(f"/v1/automations/{automation.id}/graph", good_graph(), format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_state"


def test_activate_pause_archive_lifecycle(api, org):
    automation = create(api, graph=good_graph()).json()
    base = f"/v1/automations/{automation['id']}"
    assert api.post(f"{base}/activate").json()["status"] == "active"
    assert api.post(f"{base}/activate").json()["error"]["code"] == "invalid_state"
    assert api.post(f"{base}/pause").json()["status"] == "paused"
    assert api.post(f"{base}/pause").status_code == 422
    assert api.post(f"{base}/activate").json()["status"] == "active"
    assert api.post(f"{base}/archive").json()["status"] == "archived"
    for action in ("activate", "pause", "archive"):
        response = api.post(f"{base}/{action}")
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_state"
        assert response.json()["error"]["details"] == {"status": "archived"}
    assert Automation.objects.get(pk=automation["id"]).status == "archived"


def test_activating_an_invalid_graph_is_422_with_the_errors(api, org):
    automation = factories.automation(org)
    api.put(f"/v1/automations/{automation.id}/graph", broken_graph(), format="json")
    response = api.post(f"/v1/automations/{automation.id}/activate")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "graph_invalid"
    assert [e["code"] for e in error["details"]["graph_errors"]] == ["edge_unknown_port"]
    assert Automation.objects.get(pk=automation.id).status == "draft"


def test_activation_revalidates_the_stored_graph(api, org):
    target = factories.automation(org, status="active")
    graph = {"root_node_key": "s", "edges": [],
             "nodes": [{"key": "s", "kind": "start_automation", "config": {"target_automation_id": target.id}}]}
    automation = create(api, graph=graph).json()
    assert automation["graph_errors"] == []
    target.delete()
    response = api.post(f"/v1/automations/{automation['id']}/activate")
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["error"]["details"]["graph_errors"]] == ["unknown_automation"]


def with_duplicate_key(graph):
    graph["nodes"].append({"key": "done", "kind": "message", "config": {"blocks": [{"type": "text", "text": "2nd"}]}})
    return graph


@pytest.mark.parametrize("status", ["draft", "active", "paused"])
def test_duplicate_node_keys_are_stored_as_sent_and_block_activation(api, org, status):
    automation = factories.automation(org, status=status)
    data = api.put(f"/v1/automations/{automation.id}/graph", with_duplicate_key(good_graph()), format="json").json()
    assert [e["code"] for e in data["graph_errors"]] == ["duplicate_node_key"]
    assert data["status"] == ("paused" if status == "active" else status)
    stored = Automation.objects.get(pk=automation.id)
    assert [(n["key"], n["kind"]) for n in stored.graph["nodes"]] == \
        [("greet", "message"), ("done", "end"), ("done", "message")]  # nothing dropped
    assert stored.graph["nodes"][2]["config"]["blocks"][0]["text"] == "2nd"
    for _ in range(2):  # activation re-validates the stored graph: still the duplicate
        response = api.post(f"/v1/automations/{automation.id}/activate")
        assert response.status_code == 422 and response.json()["error"]["code"] == "graph_invalid"
        assert [e["code"] for e in response.json()["error"]["details"]["graph_errors"]] == ["duplicate_node_key"]
    assert Automation.objects.get(pk=automation.id).status == ("paused" if status == "active" else status)
    # Fixed, it activates.
    assert api.put(f"/v1/automations/{automation.id}/graph", good_graph(), format="json").json()["graph_errors"] == []
    assert api.post(f"/v1/automations/{automation.id}/activate").status_code == 200


def test_duplicate_node_key_in_a_new_automation_cannot_be_activated(api):
    automation = create(api, graph=with_duplicate_key(good_graph())).json()
    assert len(automation["graph"]["nodes"]) == 3 and automation["graph_valid"] is False
    response = api.post(f"/v1/automations/{automation['id']}/activate")
    assert response.status_code == 422 and response.json()["error"]["code"] == "graph_invalid"


def put_graph(api, automation, nodes, edges=()):
    graph = {"root_node_key": nodes[0]["key"], "nodes": nodes, "edges": list(edges)}
    return api.put(f"/v1/automations/{automation.id}/graph", graph, format="json").json()


def test_a_message_without_blocks_is_valid(api, org):
    automation = factories.automation(org)
    data = put_graph(api, automation, [
        {"key": "hold", "kind": "message", "config": {"wait_for_reply": True}},
        {"key": "bare", "kind": "message", "config": {"blocks": []}},
        {"key": "done", "kind": "end", "config": {}}],
        [{"from_node": "hold", "from_port": "next", "to_node": "bare"},
         {"from_node": "bare", "from_port": "next", "to_node": "done"}])
    assert data["graph_errors"] == [] and data["graph_valid"] is True
    assert api.post(f"/v1/automations/{automation.id}/activate").status_code == 200


def test_wait_event_kinds_listed_twice_are_stored_once(api, org):
    automation = factories.automation(org)
    data = put_graph(api, automation, [
        {"key": "say", "kind": "message", "config": {"blocks": [{"type": "text", "text": "Hi"}]}},
        {"key": "hold", "kind": "wait_event",
         "config": {"event_kinds": ["dm_received", "story_reply", "dm_received"], "timeout_min": 5}}],
        [{"from_node": "say", "from_port": "next", "to_node": "hold"}])
    assert data["graph_errors"] == []
    assert data["graph"]["nodes"][1]["config"]["event_kinds"] == ["dm_received", "story_reply"]
    stored = Automation.objects.get(pk=automation.id).graph
    assert stored["nodes"][1]["config"]["event_kinds"] == ["dm_received", "story_reply"]


def test_no_response_timeout_on_a_message_that_never_waits_is_an_error(api, org):
    automation = factories.automation(org, status="active")
    data = put_graph(api, automation, [
        {"key": "say", "kind": "message",
         "config": {"blocks": [{"type": "text", "text": "Hi"}], "no_response_timeout_min": 10}}])
    assert [(e["code"], e["node_key"]) for e in data["graph_errors"]] == [("no_response_without_wait", "say")]
    assert data["graph_warnings"] == [] and data["status"] == "paused"
    response = api.post(f"/v1/automations/{automation.id}/activate")
    assert response.status_code == 422 and response.json()["error"]["code"] == "graph_invalid"


def test_other_orgs_automation_is_404_everywhere(api, other_org):
    foreign = factories.automation(other_org, graph=good_graph())
    base = f"/v1/automations/{foreign.id}"
    assert api.get(base).status_code == 404
    assert api.patch(base, {"name": "x"}, format="json").status_code == 404
    assert api.delete(base).status_code == 404
    assert api.put(f"{base}/graph", good_graph(), format="json").status_code == 404
    for action in ("activate", "pause", "archive"):
        assert api.post(f"{base}/{action}").status_code == 404
    assert api.get(f"{base}/entrypoints").status_code == 404
    stored = Automation.objects.get(pk=foreign.id)
    assert stored.name == foreign.name and stored.status == "draft"


def test_requires_an_api_key(db):
    from rest_framework.test import APIClient

    assert APIClient().get("/v1/automations").status_code == 401


def test_lifecycle_actions_work_on_the_row_as_it_is_now_not_a_stale_copy(org):
    """A caller's older copy (another request saved a broken graph since) must not activate the old graph."""
    from automations.graph import service

    automation = factories.automation(org)
    service.save_graph(automation, good_graph())
    stale = Automation.objects.get(pk=automation.pk)
    service.save_graph(Automation.objects.get(pk=automation.pk), broken_graph())
    with pytest.raises(Exception) as caught:
        service.activate(stale)
    assert getattr(caught.value, "code", None) == "graph_invalid"
    fresh = Automation.objects.get(pk=automation.pk)
    assert fresh.status == "draft" and fresh.graph["edges"][0]["from_port"] == "button.small"
