"""POST /v1/automations/{id}/simulate: the same handlers, a transcript, no writes and no sends."""

import pytest
from django.db import connection

from tests import factories

BUTTONS = [{"id": "big", "type": "branch", "label": "Big"}, {"id": "small", "type": "branch", "label": "Small"}]


def table_counts() -> dict:
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
        return counts


@pytest.fixture
def automation(org):
    nodes = [
        ("greet", "message", {"blocks": [{"type": "text", "text": "Hi {{context.name|friend}}! Size?",
                                          "buttons": BUTTONS}]}),
        ("tag", "action_group", {"actions": [{"id": "t", "type": "tag_add", "tag": "size-{{context.size}}"}]}),
        ("vip", "condition", {"predicates": {"all": [{"field": "tags", "op": "contains", "value": "size-L"}]}}),
        ("ask", "input", {"field": "email", "timeout_min": 10}),
        ("thanks", "end", {"reason": "asked"}),
        ("small", "end", {"reason": "small"}),
    ]
    edges = [("greet", "button.big", "tag"), ("greet", "button.small", "small"), ("tag", "next", "vip"),
             ("vip", "true", "ask"), ("ask", "captured", "thanks")]
    return factories.automation(org, factories.flow(nodes, edges), status="active")


def simulate(api, automation, **body):
    return api.post(f"/v1/automations/{automation.pk}/simulate", body, format="json")


def test_simulation_stops_at_the_first_unanswered_wait(api, automation):
    response = simulate(api, automation, test_context={"name": "Alice"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"steps", "ended_because", "final_context"}
    assert body["ended_because"] == "waiting_for_reply"
    [step] = body["steps"]
    assert set(step) == {"node_key", "node_kind", "entered_via_port_key", "exited_via_port_key", "outcome",
                         "rendered", "payload"}
    assert (step["node_key"], step["outcome"], step["rendered"]["text"]) == ("greet", "waiting", "Hi Alice! Size?")
    assert [b["id"] for b in step["rendered"]["parts"][0]["buttons"]] == ["big", "small"]


def test_branch_choices_answer_waits_and_force_ports(api, automation):
    body = simulate(api, automation, test_context={"size": "L"},
                    branch_choices={"greet": "button.big", "ask": "captured"}).json()
    path = [(s["node_key"], s["outcome"], s["exited_via_port_key"]) for s in body["steps"]]
    assert path == [("greet", "waiting", None), ("greet", "success", "button.big"), ("tag", "success", "next"),
                    ("vip", "success", "true"), ("ask", "waiting", None), ("ask", "success", "captured"),
                    ("thanks", "success", None)]
    assert body["ended_because"] == "asked"
    assert body["steps"][2]["rendered"][0]["tag"] == "size-L"  # merge tags resolved in the transcript
    assert body["final_context"] == {"size": "L"}


def test_a_choice_forces_a_non_waiting_branch(api, automation):
    body = simulate(api, automation, start_node_key="vip", branch_choices={"vip": "false"}).json()
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]] == [("vip", "false")]
    assert body["steps"][0]["payload"]["forced_port"] == "false"
    assert body["ended_because"] == "completed"


def test_invalid_choices_name_the_node_and_the_allowed_ports(api, automation):
    response = simulate(api, automation, branch_choices={"greet": "button.huge", "nowhere": "next"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_branch_choice"
    greet = error["details"]["branch_choices"]["greet"][0]
    assert "greet" in greet and "button.huge" in greet and "button.big" in greet and "button.small" in greet
    assert "nowhere" in error["details"]["branch_choices"]


def test_unknown_start_node_and_side_effects_are_refused(api, automation):
    assert simulate(api, automation, start_node_key="ghost").json()["error"]["code"] == "unknown_start_node"
    refused = simulate(api, automation, execute_side_effects=True)
    assert refused.status_code == 400 and "execute_side_effects" in refused.json()["error"]["details"]
    assert simulate(api, automation, surprise=1).json()["error"]["code"] == "unknown_field"


def test_simulation_writes_nothing_and_sends_nothing(api, org, contact, account, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    factories.conversation(contact, account)
    target = factories.automation(org, factories.flow([("x", "end", {})]), status="active")
    with factories.local_http_server({"/": (200, {}, b"{}")}) as server:
        nodes = [
            ("say", "message", {"blocks": [{"type": "text", "text": "hello"}]}),
            ("act", "action_group", {"actions": [
                {"id": "1", "type": "tag_add", "tag": "t"}, {"id": "2", "type": "field_set", "field": "f", "value": 1},
                {"id": "3", "type": "pause_automations_for_contact", "minutes": 5},
                {"id": "4", "type": "webhook_out", "url": server.url + "/"},
                {"id": "5", "type": "notify_admin", "message": "hi"}]}),
            ("call", "http_request", {"method": "POST", "url": server.url + "/", "response_key": "r"}),
            ("start", "start_automation", {"target_automation_id": target.pk}),
            ("split", "randomizer", {"variants": [{"key": "a", "weight": 1}]}),
            ("wait", "delay", {"minutes": 1}),
            ("done", "end", {}),
        ]
        edges = [("say", "next", "act"), ("act", "next", "call"), ("call", "success", "start"),
                 ("start", "next", "split"), ("split", "variant.a", "wait"), ("wait", "next", "done")]
        automation = factories.automation(org, factories.flow(nodes, edges), status="active")
        before = table_counts()
        automation_row = type(automation).objects.filter(pk=automation.pk).values().get()
        body = simulate(api, automation, branch_choices={"wait": "next"}).json()
        assert table_counts() == before
        assert type(automation).objects.filter(pk=automation.pk).values().get() == automation_row
    assert server.requests == []  # neither the webhook nor the http_request went out
    assert [s["node_key"] for s in body["steps"]] == ["say", "act", "call", "start", "split", "wait", "wait", "done"]
    assert body["ended_because"] == "completed"
    assert body["steps"][3]["payload"]["simulated"] is True
    assert "r" in body["final_context"] and body["final_context"]["_randomizer"] == {"split": "a"}


def test_simulation_runs_into_the_visit_cap(api, org):
    automation = factories.automation(org, factories.flow([("spin", "condition", {})], [("spin", "true", "spin")]),
                                      status="active")
    body = simulate(api, automation).json()
    assert body["ended_because"] == "infinite_loop_cap" and len(body["steps"]) == 200


def test_simulation_reports_handler_failures(api, org):
    automation = factories.automation(org, factories.flow([("jump", "goto", {})]))
    body = simulate(api, automation).json()
    assert body["ended_because"] == "handler_failure"
    assert body["steps"][0]["outcome"] == "failed" and body["steps"][0]["payload"]["error"]["type"] == "ValueError"


def test_simulation_reports_an_unwired_error_port_as_handler_failure(api, org):
    card = {"blocks": [{"type": "card", "title": "A card"}]}  # nothing WhatsApp can carry
    graph = factories.flow([("greet", "message", card), ("sorry", "end", {"reason": "sorry"})])
    automation = factories.automation(org, graph, channel="whatsapp")
    body = simulate(api, automation).json()
    assert body["ended_because"] == "handler_failure"
    [step] = body["steps"]
    assert (step["outcome"], step["exited_via_port_key"], step["payload"]["error"]["code"]) == (
        "failed", None, "nothing_deliverable")
    graph["edges"] = [{"from_node": "greet", "from_port": "error", "to_node": "sorry", "to_port": "in"}]
    automation.graph = graph
    automation.save(update_fields=["graph"])
    body = simulate(api, automation).json()
    assert body["ended_because"] == "sorry"
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]] == [("greet", "error"), ("sorry", None)]


def test_simulate_other_organization_is_404(other_api, automation):
    assert other_api.post(f"/v1/automations/{automation.pk}/simulate", {}, format="json").status_code == 404


def contact_flow(org):
    nodes = [
        ("hi", "message", {"blocks": [{"type": "text", "text": "Hi {{contact.first_name|there}} ({{fields.plan}})"}]}),
        ("who", "condition", {"predicates": {"all": [{"field": "contact.name", "op": "eq", "value": "Alice"}]}}),
        ("vip", "condition", {"predicates": {"any": [{"field": "tags", "op": "contains", "value": "vip"},
                                                     {"field": "fields.plan", "op": "eq", "value": "pro"}]}}),
        ("yes", "end", {"reason": "vip"}), ("no", "end", {"reason": "not_vip"}), ("stranger", "end", {"reason": "who"}),
    ]
    edges = [("hi", "next", "who"), ("who", "true", "vip"), ("who", "false", "stranger"), ("vip", "true", "yes"),
             ("vip", "false", "no")]
    return factories.automation(org, factories.flow(nodes, edges), status="active")


def test_test_context_contact_feeds_conditions_and_merge_tags(api, org):
    automation = contact_flow(org)
    before = table_counts()
    body = simulate(api, automation, test_context={"contact": {"name": "Alice Smith", "tags": ["vip"],
                                                               "fields": {"plan": "pro"}}, "src": "ad"}).json()
    assert table_counts() == before
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]] == \
        [("hi", "next"), ("who", "false"), ("stranger", None)]  # "Alice Smith" is not "Alice"
    assert body["steps"][0]["rendered"]["text"] == "Hi Alice (pro)"
    assert body["final_context"] == {"src": "ad"}  # the contact is not run context
    body = simulate(api, automation, test_context={"contact": {"name": "Alice", "plan": "pro"}}).json()
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]][1:] == \
        [("who", "true"), ("vip", "true"), ("yes", None)]  # an unknown key is a custom field


def test_contact_name_condition_leaves_through_true(api, org):
    automation = factories.automation(org, factories.flow(
        [("c", "condition", {"predicates": {"all": [{"field": "contact.name", "op": "eq", "value": "Alice"}]}})]),
        status="active")
    body = simulate(api, automation, test_context={"contact": {"name": "Alice"}}).json()
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]] == [("c", "true")]
    body = simulate(api, automation, test_context={}).json()
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]] == [("c", "false")]


def test_simulate_as_a_real_contact_writes_nothing(api, org, other_org):
    automation = contact_flow(org)
    person = factories.contact(org, name="Alice", tags=["lead"], custom_fields={"plan": "pro"})
    before = table_counts()
    body = simulate(api, automation, contact_id=person.id).json()
    assert [(s["node_key"], s["exited_via_port_key"]) for s in body["steps"]][1:] == [("who", "true"), ("vip", "true"),
                                                                                      ("yes", None)]
    assert body["steps"][0]["rendered"]["text"] == "Hi Alice (pro)" and body["ended_because"] == "vip"
    # test_context.contact overrides the real contact for this dry run only
    body = simulate(api, automation, contact_id=person.id,
                    test_context={"contact": {"fields": {"plan": "free"}}}).json()
    assert body["ended_because"] == "not_vip"
    assert table_counts() == before
    person.refresh_from_db()
    assert (person.name, person.tags, person.custom_fields) == ("Alice", ["lead"], {"plan": "pro"})
    foreign = factories.contact(other_org)
    response = simulate(api, automation, contact_id=foreign.id)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("described, field", [
    ("Alice", "test_context.contact"),
    ({"name": 5}, "test_context.contact.name"),
    ({"tags": "vip"}, "test_context.contact.tags"),
    ({"fields": ["plan"]}, "test_context.contact.fields"),
])
def test_a_malformed_test_contact_is_400(api, org, described, field):
    response = simulate(api, contact_flow(org), test_context={"contact": described})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error" and field in response.json()["error"]["details"]
