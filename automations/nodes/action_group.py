"""`action_group` node: runs `actions` in order (tags, fields, contact fields, pause/resume, outgoing
webhook, admin notification). Each action's `on_error` is `abort` (default: stop and leave through
`error`) or `continue`. Ports: `next`, plus `error` iff some action aborts on error."""

from automations.graph.config_checks import (
    as_dict,
    check_optional_positive_int,
    error,
    is_http_url,
    is_nonempty_str,
    list_of_dicts,
    require_object,
    warn_unknown_keys,
    warning,
)
from automations.nodes.base import NodeResult

ON_ERROR = ("abort", "continue")
DEFAULT_ON_ERROR = "abort"
CONTACT_FIELDS = ("name", "email", "phone")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_ACTIONS = 50
# type -> (required keys, optional keys)
ACTION_TYPES = {
    "tag_add": (("tag",), ()),
    "tag_remove": (("tag",), ()),
    "field_set": (("field", "value"), ()),
    "field_clear": (("field",), ()),
    "contact_field_set": (("field", "value"), ()),
    "pause_automations_for_contact": ((), ("automation_id", "minutes")),
    "resume_automations_for_contact": ((), ("automation_id",)),
    "webhook_out": (("url",), ("method", "headers", "body")),
    "notify_admin": (("message",), ()),
}
COMMON_KEYS = ("id", "type", "on_error")


def on_error(action: dict) -> str:
    return action.get("on_error") or DEFAULT_ON_ERROR


def derive_ports(config) -> list[str]:
    actions = list_of_dicts(as_dict(config).get("actions"))
    if any(on_error(action) == "abort" for action in actions):
        return ["next", "error"]
    return ["next"]


def _check_automation_ref(value, where: str, automation, issues: list):
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith("auto_"):
        issues.append(error("invalid_config", f"{where} must be an automation id (auto_…)."))
        return
    if automation is not None:
        from automations.models import Automation

        if not Automation.objects.filter(organization_id=automation.organization_id, pk=value).exists():
            issues.append(error("unknown_automation", f"{where}: no automation {value} in this organization."))


def _validate_action(action: dict, here: str, automation, issues: list):
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        issues.append(error("unknown_action_type", f"{here}.type must be one of {', '.join(ACTION_TYPES)}."))
        return
    required, optional = ACTION_TYPES[kind]
    warn_unknown_keys(action, (*COMMON_KEYS, *required, *optional), issues, where=here)
    for key in required:
        if key not in action:
            issues.append(error("invalid_config", f"{here}.{key} is required for {kind}."))
    if kind in ("tag_add", "tag_remove") and "tag" in action and not is_nonempty_str(action["tag"], 100):
        issues.append(error("invalid_config", f"{here}.tag must be a non-empty string (at most 100 chars)."))
    if kind in ("field_set", "field_clear") and "field" in action and not is_nonempty_str(action["field"], 100):
        issues.append(error("invalid_config", f"{here}.field must be a custom field slug."))
    if kind == "contact_field_set":
        if "field" in action and action["field"] not in CONTACT_FIELDS:
            issues.append(error("invalid_config", f"{here}.field must be one of {', '.join(CONTACT_FIELDS)}."))
        if "value" in action and not isinstance(action["value"], str):
            issues.append(error("invalid_config", f"{here}.value must be a string (merge tags allowed)."))
    if kind in ("pause_automations_for_contact", "resume_automations_for_contact"):
        _check_automation_ref(action.get("automation_id"), f"{here}.automation_id", automation, issues)
        check_optional_positive_int(action, "minutes", issues)
    if kind == "webhook_out":
        if "url" in action and not is_http_url(action["url"]):
            issues.append(error("invalid_url", f"{here}.url must be an http(s) URL."))
        method = action.get("method")
        if method is not None and method not in HTTP_METHODS:
            issues.append(error("invalid_config", f"{here}.method must be one of {', '.join(HTTP_METHODS)}."))
        headers = action.get("headers")
        if headers is not None and (not isinstance(headers, dict)
                                    or not all(isinstance(v, str) for v in headers.values())):
            issues.append(error("invalid_config", f"{here}.headers must be an object of strings."))
    if kind == "notify_admin" and "message" in action and not is_nonempty_str(action["message"], 2000):
        issues.append(error("invalid_config", f"{here}.message must be a non-empty string."))


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("actions",), issues)
    actions = config.get("actions", [])
    if not isinstance(actions, list):
        issues.append(error("invalid_config", "config.actions must be a list."))
        return issues
    if not actions:
        issues.append(warning("empty_actions", "This action group does nothing."))
    if len(actions) > MAX_ACTIONS:
        issues.append(error("invalid_config", f"config.actions holds at most {MAX_ACTIONS} actions."))
    seen: set = set()
    for index, action in enumerate(actions):
        here = f"config.actions[{index}]"
        if not isinstance(action, dict):
            issues.append(error("invalid_config", f"{here} must be an object {{id, type, …}}."))
            continue
        action_id = action.get("id")
        if not is_nonempty_str(action_id, 64):
            issues.append(error("invalid_config", f"{here}.id is required (a short string)."))
        elif action_id in seen:
            issues.append(error("duplicate_id", f"{here}.id {action_id!r} is used twice."))
        else:
            seen.add(action_id)
        if action.get("on_error") is not None and action["on_error"] not in ON_ERROR:
            issues.append(error("invalid_config", f"{here}.on_error must be abort or continue."))
        _validate_action(action, here, automation, issues)
    return issues


# -- runtime -------------------------------------------------------------------------------------------

class ActionFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def calls_out(config) -> bool:
    """A webhook_out makes the runner commit the run's state before this node runs."""
    return any(a.get("type") == "webhook_out" for a in list_of_dicts(as_dict(config).get("actions")))


def _automation_ref(ctx, automation_id):
    if automation_id is None:
        return None
    from automations.models import Automation

    if not Automation.objects.filter(organization_id=ctx.automation.organization_id, pk=automation_id).exists():
        raise ActionFailed("unknown_automation", f"no automation {automation_id} in this organization")
    return automation_id


def _non_empty(value, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ActionFailed("empty_value", f"{what} is empty after merge tags")
    return text


def _run_action(ctx, action: dict) -> dict:
    kind = action.get("type")
    effects = ctx.effects
    if kind == "tag_add":
        tag = _non_empty(ctx.render(action.get("tag")), "tag")
        return {"tag": tag, "changed": effects.tag_add(tag)}
    if kind == "tag_remove":
        tag = _non_empty(ctx.render(action.get("tag")), "tag")
        return {"tag": tag, "changed": effects.tag_remove(tag)}
    if kind == "field_set":
        field = _non_empty(action.get("field"), "field")
        value = ctx.render_value(action.get("value"))
        effects.field_set(field, value)
        return {"field": field, "value": value}
    if kind == "field_clear":
        field = _non_empty(action.get("field"), "field")
        effects.field_clear(field)
        return {"field": field}
    if kind == "contact_field_set":
        field = action.get("field")
        if field not in CONTACT_FIELDS:
            raise ActionFailed("invalid_field", f"contact field must be one of {', '.join(CONTACT_FIELDS)}")
        value = ctx.render(action.get("value")).strip()
        if field == "email" and value and "@" not in value:
            raise ActionFailed("invalid_email", f"{value!r} is not an email address")
        effects.contact_field_set(field, value)
        return {"field": field, "value": value}
    if kind == "pause_automations_for_contact":
        minutes = action.get("minutes")
        if minutes is not None and (not isinstance(minutes, int) or minutes <= 0):
            raise ActionFailed("invalid_minutes", "minutes must be a positive integer")
        return effects.pause_automations(automation_id=_automation_ref(ctx, action.get("automation_id")),
                                         minutes=minutes, reason=f"automation {ctx.automation.pk}")
    if kind == "resume_automations_for_contact":
        return effects.resume_automations(automation_id=_automation_ref(ctx, action.get("automation_id")))
    if kind == "webhook_out":
        from automations.runtime.outbound_http import HttpError

        url = ctx.render(action.get("url"))
        method = action.get("method") or "POST"
        headers = {str(k): ctx.render(v) for k, v in (action.get("headers") or {}).items()}
        body = ctx.render_value(action["body"]) if action.get("body") is not None else None
        if body is not None and not isinstance(body, str):
            headers.setdefault("Content-Type", "application/json")
        try:
            response = effects.http(method, url, headers=headers, body=body)
        except HttpError as exc:
            raise ActionFailed(exc.code, str(exc))
        if not response.ok:
            raise ActionFailed("http_status", f"the webhook answered {response.status}")
        return {"url": url, "method": method, "status": response.status}
    if kind == "notify_admin":
        message = _non_empty(ctx.render(action.get("message")), "message")
        effects.notify_admin(message)
        return {"message": message}
    raise ActionFailed("unknown_action_type", f"unknown action type {kind!r}")


def handle(ctx):
    """Run the actions in order. A failing action with on_error `abort` stops the group and leaves
    through `error`; with `continue` the failure is recorded and the next action runs. Contact
    changes are visible to the following actions and nodes at once."""
    from automations.models import StepOutcome

    results = []
    for action in list_of_dicts(as_dict(ctx.config).get("actions")):
        entry = {"id": action.get("id"), "type": action.get("type")}
        try:
            entry.update(_run_action(ctx, action))
            entry["ok"] = True
        except Exception as exc:  # noqa: BLE001 - an action's failure is data: on_error decides what follows
            entry.update(ok=False, error={"code": getattr(exc, "code", type(exc).__name__), "message": str(exc)})
            results.append(entry)
            if on_error(action) == "abort":
                return NodeResult(port="error", outcome=StepOutcome.FAILED, payload={"actions": results},
                                  rendered=results,
                                  error={"code": "action_failed", "action_id": action.get("id"),
                                         "message": str(exc)})
            continue
        results.append(entry)
    failures = sum(1 for r in results if not r["ok"])
    return NodeResult(port="next", payload={"actions": results, "failures": failures}, rendered=results)
