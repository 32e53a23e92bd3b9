"""Per-kind config validation (reference/configs.md). Issues are {code, message, port?}; warnings carry
severity "warning"."""

import pytest

from automations.graph.config_checks import is_warning
from automations.nodes import registry
from tests import factories


def issues(kind, config, automation=None):
    return registry.get(kind).validate(config, automation=automation)


def errors(kind, config, automation=None):
    return [i for i in issues(kind, config, automation) if not is_warning(i)]


def warnings(kind, config, automation=None):
    return [i for i in issues(kind, config, automation) if is_warning(i)]


def codes(found):
    return [i["code"] for i in found]


def text(t="Hello {{contact.name}}", **extra):
    return {"type": "text", "text": t, **extra}


def branch(button_id, label="Go"):
    return {"id": button_id, "type": "branch", "label": label}


VALID = {
    "message": {"blocks": [text(buttons=[branch("a")])], "quick_replies": [{"id": "q", "label": "Q"}],
                "no_response_timeout_min": 10},
    "input": {"field": "email", "input_type": "email", "max_retries": 3, "timeout_min": 60, "skip_allowed": True},
    "delay": {"minutes": 5},
    "wait_event": {"event_kinds": ["dm_received", "comment_created"], "timeout_min": 30},
    "condition": {"predicates": {"all": [{"field": "tags", "op": "contains", "value": "vip"}]}},
    "randomizer": {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 2.5, "label": "B"}]},
    "action_group": {"actions": [{"id": "1", "type": "tag_add", "tag": "lead"},
                                 {"id": "2", "type": "field_set", "field": "plan", "value": "{{context.plan}}"},
                                 {"id": "3", "type": "field_clear", "field": "old"},
                                 {"id": "4", "type": "contact_field_set", "field": "email", "value": "{{context.e}}"},
                                 {"id": "5", "type": "pause_automations_for_contact", "minutes": 60},
                                 {"id": "6", "type": "resume_automations_for_contact"},
                                 {"id": "7", "type": "webhook_out", "url": "https://hooks.test/x", "method": "POST",
                                  "headers": {"X-A": "1"}, "body": {"id": "{{contact.id}}"}, "on_error": "continue"},
                                 {"id": "8", "type": "notify_admin", "message": "New lead"}]},
    "http_request": {"method": "POST", "url": "https://api.test/{{context.id}}", "headers": {"A": "b"},
                     "body": "{}", "timeout_ms": 30000, "response_key": "api"},
    "start_automation": {"target_automation_id": "auto_x", "pass_context": True},
    "goto": {"target_node_key": "start"},
    "end": {"reason": "bought"},
}


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


# --- message -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, code", [
    ({"blocks": [text(buttons=[branch("a"), branch("b"), branch("c"), branch("d")])]}, "too_many_buttons"),
    ({"blocks": [{"type": "card", "title": "t", "buttons": [branch(str(i)) for i in range(4)]}]}, "too_many_buttons"),
    ({"blocks": [text(buttons=[branch("a")]), text(buttons=[branch("a")])]}, "duplicate_id"),
    ({"blocks": [text(buttons=[branch("bad id!")])]}, "invalid_id"),
    ({"blocks": [text(buttons=[{"id": "u", "type": "url", "label": "Site", "url": "ftp://x"}])]}, "invalid_url"),
    ({"blocks": [text(buttons=[{"id": "c", "type": "call", "label": "Call"}])]}, "invalid_config"),
    ({"blocks": [text(buttons=[{"id": "x", "type": "teleport", "label": "x"}])]}, "invalid_config"),
    ({"blocks": [text()], "quick_replies": [{"id": str(i), "label": "x"} for i in range(14)]},
     "too_many_quick_replies"),
    ({"blocks": [text()], "quick_replies": [{"id": "a", "label": "x"}, {"id": "a", "label": "y"}]}, "duplicate_id"),
    ({"blocks": [text()], "quick_replies": [{"id": "a"}]}, "invalid_config"),
    ({"blocks": [text("")]}, "invalid_config"),
    ({"blocks": [{"type": "image"}]}, "invalid_config"),
    ({"blocks": [{"type": "hologram"}]}, "invalid_config"),
    ({"blocks": [{"type": "card"}]}, "invalid_config"),
    ({"blocks": [{"type": "gallery", "cards": []}]}, "invalid_config"),
    ({"blocks": [{"type": "gallery", "cards": [{"title": str(i)} for i in range(11)]}]}, "too_many_cards"),
    ({"blocks": [text(), {"type": "delay", "seconds": 11}]}, "invalid_config"),
    ({"blocks": [text()], "wait_for_reply": "yes"}, "invalid_config"),
    ({"blocks": [text()], "no_response_timeout_min": 0}, "invalid_config"),
    ({"blocks": [text()], "typing_indicator_seconds": 60}, "invalid_config"),
    ({"blocks": "text"}, "invalid_config"),
])
def test_message_errors(config, code):
    assert code in codes(errors("message", config))


def test_message_media_cards_and_galleries_are_valid():
    config = {"blocks": [{"type": "image", "media_ref": "m1", "caption": "c"}, {"type": "video", "media_ref": "m2"},
                         {"type": "audio", "media_ref": "m3"}, {"type": "file", "media_ref": "m4"},
                         {"type": "delay", "seconds": 0.5},
                         {"type": "card", "title": "t", "subtitle": "s", "media_ref": "m",
                          "buttons": [branch("a"), {"id": "s", "type": "share"},
                                      {"id": "p", "type": "call", "label": "Call", "phone": "+1"}]},
                         {"type": "gallery", "cards": [{"title": str(i)} for i in range(10)]}]}
    assert errors("message", config) == []


def test_channel_limits_are_warnings(org):
    whatsapp = factories.automation(org, channel="whatsapp")
    telegram = factories.automation(org, channel="telegram")
    instagram = factories.automation(org, channel="instagram")
    with_qr = {"blocks": [text()], "quick_replies": [{"id": "a", "label": "A"}]}
    with_card = {"blocks": [{"type": "card", "title": "t"}]}
    with_audio = {"blocks": [{"type": "audio", "media_ref": "a"}]}
    assert warnings("message", with_qr, whatsapp) == []  # sent as reply buttons or a list
    assert errors("message", with_qr, whatsapp) == []
    assert codes(warnings("message", with_card, telegram)) == ["unsupported_on_channel"]
    assert codes(warnings("message", with_audio, instagram)) == ["unsupported_on_channel"]
    assert warnings("message", with_qr, instagram) == []
    assert warnings("message", with_audio, whatsapp) == []


def test_no_response_on_a_message_that_never_waits_is_an_error():
    found = errors("message", {"blocks": [text()], "no_response_timeout_min": 5})
    assert codes(found) == ["no_response_without_wait"]
    assert warnings("message", {"blocks": [text()], "no_response_timeout_min": 5}) == []


@pytest.mark.parametrize("config", [{"blocks": []}, {}, {"blocks": [{"type": "delay", "seconds": 1}]},
                                    {"wait_for_reply": True}])
def test_a_message_without_blocks_is_valid(config):
    assert errors("message", config) == []


# --- input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, code", [
    ({}, "invalid_config"),
    ({"field": "has space"}, "invalid_config"),
    ({"field": "x", "input_type": "date"}, "invalid_config"),
    ({"field": "x", "max_retries": 0}, "invalid_config"),
    ({"field": "x", "timeout_min": -1}, "invalid_config"),
    ({"field": "x", "skip_allowed": "sure"}, "invalid_config"),
    ({"field": "x", "input_type": "choice"}, "invalid_config"),
    ({"field": "x", "input_type": "choice", "choices": [{"label": "no value"}]}, "invalid_config"),
    ({"field": "x", "input_type": "choice", "choices": [{"value": "small", "label": "S", "match": ["s"]},
                                                        {"value": "Small"}]}, "ambiguous_choice"),
    ({"field": "x", "input_type": "choice", "choices": [{"value": "s", "match": ["big"]},
                                                        {"value": "l", "match": ["BIG"]}]}, "ambiguous_choice"),
    ({"field": "x", "validation": {"min": 5, "max": 1}}, "invalid_config"),
    ({"field": "x", "validation": {"pattern": "^(?=x)"}}, "invalid_regex"),
    ({"field": "x", "validation": {"pattern": "["}}, "invalid_regex"),
    ({"field": "x", "input_type": "file", "max_size_mb": 0}, "invalid_config"),
    ({"field": "x", "input_type": "file", "accepted_mime_types": "image/png"}, "invalid_config"),
])
def test_input_errors(config, code):
    assert code in codes(errors("input", config))


def test_unambiguous_choices_are_valid():
    config = {"field": "size", "input_type": "choice",
              "choices": [{"value": "s", "label": "Small", "match": ["sm", "1"]},
                          {"value": "l", "label": "Large", "match": ["lg", "2"]}],
              "validation": {"pattern": r"^\w{1,5}$"}}
    assert errors("input", config) == []


# --- delay / wait_event --------------------------------------------------------------------------------

@pytest.mark.parametrize("config, code", [
    ({}, "delay_zero"),
    ({"minutes": 0, "seconds": 0}, "delay_zero"),
    ({"weeks": 1}, "invalid_config"),
    ({"minutes": -5, "hours": 1}, "invalid_config"),
    ({"minutes": "5"}, "invalid_config"),
    ({"days": 400}, "invalid_config"),
])
def test_delay_errors(config, code):
    assert code in codes(errors("delay", config))


def test_delay_units_sum():
    from automations.nodes.delay import total_seconds

    assert total_seconds({"seconds": 30, "minutes": 1, "hours": 1, "days": 1}) == 90090


@pytest.mark.parametrize("config, code", [
    ({}, "invalid_config"),
    ({"event_kinds": []}, "invalid_config"),
    ({"event_kinds": ["dm_received", "telepathy"]}, "unknown_event_kind"),
    ({"event_kinds": ["dm_received"], "timeout_min": 0}, "invalid_config"),
])
def test_wait_event_errors(config, code):
    assert code in codes(errors("wait_event", config))


# --- condition / randomizer ----------------------------------------------------------------------------

def test_condition_predicates_are_validated():
    assert codes(errors("condition", {"predicates": {"all": [{"field": "x", "op": "eq", "value": 1}]}})) == \
        ["invalid_predicates"]
    assert codes(warnings("condition", {"predicates": {}})) == ["empty_predicates"]


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


# --- action_group --------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, code", [
    ({"id": "1", "type": "launch_rocket"}, "unknown_action_type"),
    ({"type": "tag_add", "tag": "x"}, "invalid_config"),
    ({"id": "1", "type": "tag_add"}, "invalid_config"),
    ({"id": "1", "type": "tag_add", "tag": ""}, "invalid_config"),
    ({"id": "1", "type": "field_set", "field": "plan"}, "invalid_config"),
    ({"id": "1", "type": "contact_field_set", "field": "tags", "value": "x"}, "invalid_config"),
    ({"id": "1", "type": "pause_automations_for_contact", "automation_id": "nope"}, "invalid_config"),
    ({"id": "1", "type": "pause_automations_for_contact", "minutes": 0}, "invalid_config"),
    ({"id": "1", "type": "webhook_out", "url": "javascript:alert(1)"}, "invalid_url"),
    ({"id": "1", "type": "webhook_out", "url": "https://x.test", "method": "BREW"}, "invalid_config"),
    ({"id": "1", "type": "notify_admin", "message": ""}, "invalid_config"),
    ({"id": "1", "type": "tag_add", "tag": "x", "on_error": "explode"}, "invalid_config"),
])
def test_action_errors(action, code):
    assert code in codes(errors("action_group", {"actions": [action]}))


def test_duplicate_action_ids_and_empty_groups():
    duplicate = {"actions": [{"id": "1", "type": "tag_add", "tag": "a"}, {"id": "1", "type": "tag_add", "tag": "b"}]}
    assert "duplicate_id" in codes(errors("action_group", duplicate))
    assert codes(warnings("action_group", {"actions": []})) == ["empty_actions"]


def test_action_automation_reference_must_exist_in_the_org(org, other_org):
    mine = factories.automation(org)
    foreign = factories.automation(other_org)
    config = {"actions": [{"id": "1", "type": "pause_automations_for_contact", "automation_id": foreign.id}]}
    assert codes(errors("action_group", config, mine)) == ["unknown_automation"]
    config["actions"][0]["automation_id"] = mine.id
    assert errors("action_group", config, mine) == []


# --- http_request --------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, code", [
    ({"method": "FETCH"}, "invalid_config"),
    ({"url": "not a url"}, "invalid_url"),
    ({"timeout_ms": 30001}, "timeout_too_long"),
    ({"timeout_ms": 0}, "invalid_config"),
    ({"response_key": "has space"}, "invalid_config"),
    ({"headers": {"A": 1}}, "invalid_config"),
    ({"body": {"json": "object"}}, "invalid_config"),
    ({"body": "x" * (256 * 1024 + 1)}, "body_too_large"),
])
def test_http_request_errors(change, code):
    assert code in codes(errors("http_request", {**VALID["http_request"], **change}))


# --- start_automation / goto / end ---------------------------------------------------------------------

def test_start_automation_target_rules(org, other_org):
    me = factories.automation(org, channel="instagram")
    active_target = factories.automation(org, channel="instagram", status="active")
    draft_target = factories.automation(org, channel="instagram")
    other_channel = factories.automation(org, channel="telegram", status="active")
    foreign = factories.automation(other_org, channel="instagram", status="active")

    def check(target_id, **extra):
        return issues("start_automation", {"target_automation_id": target_id, **extra}, me)

    assert check(active_target.id) == []
    assert codes(check(me.id)) == ["start_automation_self"]
    assert codes(check(other_channel.id)) == ["channel_mismatch"]
    assert codes(check(foreign.id)) == ["unknown_automation"]
    assert codes(check("auto_missing")) == ["unknown_automation"]
    assert codes(check(draft_target.id)) == ["target_not_active"]
    assert all(is_warning(i) for i in check(draft_target.id))
    assert codes(errors("start_automation", {})) == ["invalid_config"]
    ep = factories.entrypoint(active_target)
    assert check(active_target.id, entrypoint_id=ep.id) == []
    assert codes(check(active_target.id, entrypoint_id="aep_other")) == ["unknown_entrypoint"]


def test_goto_and_end():
    assert codes(errors("goto", {})) == ["invalid_config"]
    assert errors("end", {}) == []
    assert errors("end", None) == []
    assert codes(errors("end", {"reason": ""})) == ["invalid_config"]
    assert codes(errors("end", {"reason": "x" * 101})) == ["invalid_config"]
    from automations.nodes.end import reason

    assert reason({}) == "completed" and reason({"reason": "bought"}) == "bought"
