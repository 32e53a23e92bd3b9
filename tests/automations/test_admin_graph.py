"""Admin: the automation page shows problems, the node table with ports and targets, inlines; actions
and entrypoint saves go through the same rules as the API."""

import pytest

from automations.graph.service import save_graph
from automations.models import Automation, Entrypoint
from tests import factories

pytestmark = pytest.mark.django_db


GRAPH = {
    "root_node_key": "greet",
    "nodes": [
        {"key": "greet", "kind": "message", "title": "Say hi", "config": {"blocks": [
            {"type": "text", "text": "Size?", "buttons": [{"id": "large", "type": "branch", "label": "L"}]}]}},
        {"key": "jump", "kind": "goto", "config": {"target_node_key": "greet"}},
        {"key": "done", "kind": "end", "config": {}},
    ],
    "edges": [{"from_node": "greet", "from_port": "button.large", "to_node": "done", "to_port": "in"},
              {"from_node": "greet", "from_port": "sideways", "to_node": "done", "to_port": "in"}],
}


def test_change_page_shows_errors_node_table_and_inlines(admin_client, org, account):
    automation = factories.automation(org)
    save_graph(automation, GRAPH)
    factories.entrypoint(automation, kind="dm_received", config={"keywords": ["hi"]})
    factories.binding(automation, account)
    response = admin_client.get(factories.admin_url(automation))
    assert response.status_code == 200
    html = response.content.decode()
    assert "edge_unknown_port" in html and "1 error(s)" in html
    assert "unreachable_node" in html  # jump is a warning
    assert html.index("edge_unknown_port") < html.index("graph-nodes")  # problems on top
    assert "<code>button.large</code> → done" in html
    assert "<code>next</code> → (not wired)" in html
    assert "jumps to <strong>greet</strong>" in html
    assert "(root)" in html and "Say hi" in html
    assert "Dm received" in html or "dm_received" in html
    assert "Default reply" in html or "default_reply" in html


def test_valid_graph_and_changelist(admin_client, org):
    automation = factories.automation(org, name="Clean flow")
    graph = {**GRAPH, "edges": GRAPH["edges"][:1],
             "nodes": [n for n in GRAPH["nodes"] if n["key"] != "jump"]}
    save_graph(automation, graph)
    page = admin_client.get(factories.admin_url(automation)).content.decode()
    assert "The graph is valid." in page
    listing = admin_client.get("/admin/automations/automation/")
    assert listing.status_code == 200 and "Clean flow" in listing.content.decode()
    assert admin_client.get("/admin/automations/entrypoint/").status_code == 200
    assert admin_client.get("/admin/automations/binding/").status_code == 200
    assert admin_client.get("/admin/automations/automation/add/").status_code == 200


def test_activate_action_refuses_an_invalid_graph(admin_client, org):
    broken = factories.automation(org)
    save_graph(broken, GRAPH)
    good = factories.automation(org)
    save_graph(good, {**GRAPH, "edges": GRAPH["edges"][:1], "nodes": [GRAPH["nodes"][0], GRAPH["nodes"][2]]})
    response = admin_client.post("/admin/automations/automation/", {
        "action": "activate_selected", "_selected_action": [broken.pk, good.pk]}, follow=True)
    assert response.status_code == 200
    assert "fix them before activating" in response.content.decode()
    assert Automation.objects.get(pk=broken.pk).status == "draft"
    assert Automation.objects.get(pk=good.pk).status == "active"


def test_adding_an_automation_validates_its_graph(admin_client, org):
    response = admin_client.post("/admin/automations/automation/add/", {
        "name": "From admin", "organization": org.pk, "channel": "instagram",
        "entrypoints-TOTAL_FORMS": 0, "entrypoints-INITIAL_FORMS": 0,
        "bindings-TOTAL_FORMS": 0, "bindings-INITIAL_FORMS": 0,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Automation.objects.get(name="From admin")
    assert [e["code"] for e in created.graph_errors] == ["root_missing"]


def test_entrypoint_admin_applies_api_rules(admin_client, org):
    automation = factories.automation(org)
    bad = admin_client.post("/admin/automations/entrypoint/add/", {
        "automation": automation.pk, "kind": "dm_received", "status": "active",
        "config": '{"keywords": ["(\\\\w+) \\\\1"], "match_mode": "regex"}', "filters": "{}",
        "allow_reentry": "on", "reentry_cooldown_min": 60, "priority": 100})
    assert bad.status_code == 200 and "does not compile with RE2" in bad.content.decode()
    assert Entrypoint.objects.count() == 0
    good = admin_client.post("/admin/automations/entrypoint/add/", {
        "automation": automation.pk, "kind": "dm_received", "status": "active",
        "config": '{"keywords": ["hi"]}', "filters": "{}",
        "allow_reentry": "on", "reentry_cooldown_min": 60, "priority": 100})
    assert good.status_code == 302
    row = Entrypoint.objects.get()
    assert row.specificity == 30 and row.config["match_mode"] == "exact" and row.channel == automation.channel
    assert row.organization_id == org.pk


def test_inline_entrypoint_and_binding_saved_from_the_automation_page(admin_client, org, account):
    automation = factories.automation(org, channel="instagram")
    response = admin_client.post(factories.admin_url(automation), {
        "name": automation.name,
        "entrypoints-TOTAL_FORMS": 1, "entrypoints-INITIAL_FORMS": 0,
        "entrypoints-0-kind": "webhook_inbound", "entrypoints-0-status": "active",
        "entrypoints-0-config": "{}", "entrypoints-0-filters": "{}", "entrypoints-0-priority": 100,
        "entrypoints-0-allow_reentry": "on", "entrypoints-0-reentry_cooldown_min": 60,
        "bindings-TOTAL_FORMS": 1, "bindings-INITIAL_FORMS": 0,
        "bindings-0-social_account": account.pk, "bindings-0-binding_type": "default_reply",
        "bindings-0-status": "active", "bindings-0-config": "{}",
    }, follow=True)
    assert response.status_code == 200
    entrypoint = Entrypoint.objects.get(automation=automation)
    assert entrypoint.specificity == 30 and entrypoint.webhook_slug and entrypoint.organization_id == org.pk
    assert "shown once" in response.content.decode() and entrypoint.webhook_secret in response.content.decode()
    assert automation.bindings.get().organization_id == org.pk
