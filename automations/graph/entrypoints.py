"""Entrypoint rules shared by the API and the admin: per-kind config validation and defaults
(reference/configs.md "Entrypoint configs"), derived specificity, webhook slug and secret.

Specificity (higher wins; ties → priority ASC, created_at ASC):
  30  keywords matched exactly or by regex, postback payloads (an exact payload match), webhook_inbound
  25  asset-filtered: post_ids / story_ids
  20  filtered: any filter predicate
  10  scoped to one social account, no filters
   0  catch-all
Keywords matched with `contains` add nothing (as the reference does): such an entrypoint ranks like a
catch-all of its scope, so an exact keyword or a filtered entrypoint wins over it.
"""

import secrets
import string

from automations.graph import filters as filter_rules
from automations.graph.config_checks import is_context_key, is_nonempty_str
from automations.graph.regex_guard import check_pattern
from automations.models import EntrypointKind
from automations.runtime import cron
from relay.core.serializers import save_changes

SPECIFICITY_EXACT = 30
SPECIFICITY_ASSET = 25
SPECIFICITY_FILTERED = 20
SPECIFICITY_ACCOUNT = 10
SPECIFICITY_CATCH_ALL = 0

MATCH_MODES = ("exact", "contains", "regex")
DEFAULT_MATCH_MODE = "exact"  # the matcher's default too
CONTACT_LOOKUPS = ("contact_id", "email", "phone")
MAX_LIST_ITEMS = 100
MAX_KEYWORD_LENGTH = 200
_SLUG_ALPHABET = string.ascii_lowercase + string.digits

_KEYWORD_KEYS = ("keywords", "match_mode", "case_sensitive")
CONFIG_KEYS = {
    EntrypointKind.DM_RECEIVED: (*_KEYWORD_KEYS, "first_message_only"),
    EntrypointKind.COMMENT_CREATED: ("post_ids", *_KEYWORD_KEYS, "include_replies"),
    EntrypointKind.STORY_REPLY: ("story_ids", *_KEYWORD_KEYS),
    EntrypointKind.STORY_MENTION: ("story_ids", *_KEYWORD_KEYS),
    EntrypointKind.POSTBACK: ("payloads",),
    EntrypointKind.TAG_APPLIED: ("tag_ids",),
    EntrypointKind.TAG_REMOVED: ("tag_ids",),
    EntrypointKind.FIELD_CHANGED: ("field_keys", "from", "to"),
    EntrypointKind.SCHEDULE: ("cron", "timezone"),
    EntrypointKind.WEBHOOK_INBOUND: ("payload_mapping", "contact_lookup", "create_contact"),
}
KEYWORD_KINDS = (EntrypointKind.DM_RECEIVED, EntrypointKind.COMMENT_CREATED, EntrypointKind.STORY_REPLY,
                 EntrypointKind.STORY_MENTION)
BOOL_KEYS = ("case_sensitive", "first_message_only", "include_replies", "create_contact")
# Defaults written into the stored config so the matcher and the API show the same thing.
DEFAULTS = {
    EntrypointKind.DM_RECEIVED: {"case_sensitive": False, "first_message_only": False},
    EntrypointKind.COMMENT_CREATED: {"case_sensitive": False, "include_replies": True},
    EntrypointKind.STORY_REPLY: {"case_sensitive": False},
    EntrypointKind.STORY_MENTION: {"case_sensitive": False},
    EntrypointKind.SCHEDULE: {"timezone": "UTC"},
    EntrypointKind.WEBHOOK_INBOUND: {"payload_mapping": {}, "contact_lookup": "contact_id", "create_contact": False},
}


def _string_list(value, where: str, problems: dict, *, required: bool = False, max_length: int = 200):
    if value is None:
        if required:
            problems.setdefault(where, []).append("is required: a non-empty list of strings.")
        return
    if (not isinstance(value, list) or not all(is_nonempty_str(v, max_length) for v in value)
            or (required and not value)):
        problems.setdefault(where, []).append(f"must be a {'non-empty ' if required else ''}list of strings "
                                              f"(each 1-{max_length} characters).")
    elif len(value) > MAX_LIST_ITEMS:
        problems.setdefault(where, []).append(f"holds at most {MAX_LIST_ITEMS} items.")


def _validate_keywords(config: dict, problems: dict):
    _string_list(config.get("keywords"), "config.keywords", problems, max_length=MAX_KEYWORD_LENGTH)
    mode = config.get("match_mode")
    if mode is not None and mode not in MATCH_MODES:
        problems.setdefault("config.match_mode", []).append(f"must be one of {', '.join(MATCH_MODES)}.")
    if mode == "regex" and isinstance(config.get("keywords"), list):
        for index, pattern in enumerate(config["keywords"]):
            problem = check_pattern(pattern)
            if problem:
                problems.setdefault(f"config.keywords[{index}]", []).append(f"regex {problem}.")


def has_tag_filter(filters) -> bool:
    """Whether the top-level `all` requires a tag, so a schedule's audience can be enumerated."""
    items = filters.get("all") if isinstance(filters, dict) else None
    return any(isinstance(item, dict) and item.get("field") in ("tags", "contact.tags")
               and item.get("op") in ("contains", "eq", "in") for item in (items or []))


def validate_config(kind: str, config, *, filters=None, active: bool = True) -> dict[str, list[str]]:
    """Problems by field path ({} when valid) for an entrypoint's kind, config and filters."""
    problems: dict[str, list[str]] = {}
    if not isinstance(config, dict):
        return {"config": ["must be an object."]}
    for key in sorted(set(config) - set(CONFIG_KEYS.get(kind, ()))):
        problems.setdefault(f"config.{key}", []).append(f"is not a setting of {kind} entrypoints.")
    for key in BOOL_KEYS:
        if key in config and not isinstance(config[key], bool):
            problems.setdefault(f"config.{key}", []).append("must be true or false.")
    if kind in KEYWORD_KINDS:
        _validate_keywords(config, problems)
    if kind == EntrypointKind.COMMENT_CREATED:
        _string_list(config.get("post_ids"), "config.post_ids", problems)
    if kind in (EntrypointKind.STORY_REPLY, EntrypointKind.STORY_MENTION):
        _string_list(config.get("story_ids"), "config.story_ids", problems)
    if kind == EntrypointKind.POSTBACK:
        _string_list(config.get("payloads"), "config.payloads", problems)
    if kind in (EntrypointKind.TAG_APPLIED, EntrypointKind.TAG_REMOVED):
        _string_list(config.get("tag_ids"), "config.tag_ids", problems, required=True, max_length=100)
    if kind == EntrypointKind.FIELD_CHANGED:
        _string_list(config.get("field_keys"), "config.field_keys", problems, required=True, max_length=100)
        for key in ("from", "to"):
            if isinstance(config.get(key), dict | list):
                problems.setdefault(f"config.{key}", []).append("must be a single value.")
    if kind == EntrypointKind.SCHEDULE:
        for message in cron.validate_schedule_config(config):
            field = "config.timezone" if "timezone" in message else "config.cron"
            problems.setdefault(field, []).append(message)
        if active and not has_tag_filter(filters):
            problems.setdefault("filters", []).append(
                "an active schedule entrypoint needs a tag filter ({\"all\": [{\"field\": \"tags\", \"op\": "
                "\"contains\", \"value\": \"…\"}]}) so its audience can be enumerated.")
    if kind == EntrypointKind.WEBHOOK_INBOUND:
        mapping = config.get("payload_mapping", {})
        if not isinstance(mapping, dict) or not all(
                is_context_key(k) and isinstance(v, str) and v.startswith("$") for k, v in mapping.items()):
            problems.setdefault("config.payload_mapping", []).append(
                "must map context keys to JSON paths starting with '$' (e.g. {\"order_id\": \"$.order.id\"}).")
        if config.get("contact_lookup", "contact_id") not in CONTACT_LOOKUPS:
            problems.setdefault("config.contact_lookup", []).append(f"must be one of {', '.join(CONTACT_LOOKUPS)}.")
    for message in filter_rules.validate_predicates(filters):
        problems.setdefault("filters", []).append(message)
    return problems


def normalize_config(kind: str, config: dict) -> dict:
    """The config with defaults filled in (match_mode only when there are keywords)."""
    normalized = {**DEFAULTS.get(kind, {}), **config}
    if kind in KEYWORD_KINDS and normalized.get("keywords"):
        normalized.setdefault("match_mode", DEFAULT_MATCH_MODE)
    return normalized


def derive_specificity(kind: str, config, filters, social_account_id) -> int:
    config = config if isinstance(config, dict) else {}
    keywords = config.get("keywords") or []
    mode = config.get("match_mode") or DEFAULT_MATCH_MODE
    if kind == EntrypointKind.WEBHOOK_INBOUND:
        return SPECIFICITY_EXACT
    if kind in KEYWORD_KINDS and keywords and mode in ("exact", "regex"):
        return SPECIFICITY_EXACT
    if kind == EntrypointKind.POSTBACK and config.get("payloads"):
        return SPECIFICITY_EXACT
    if config.get("post_ids") or config.get("story_ids"):
        return SPECIFICITY_ASSET
    if filter_rules.fields_used(filters):
        return SPECIFICITY_FILTERED
    if social_account_id:
        return SPECIFICITY_ACCOUNT
    return SPECIFICITY_CATCH_ALL


def new_webhook_slug() -> str:
    """24 random lowercase letters/digits: unguessable, URL-safe (POST /v1/webhooks/automations/{slug})."""
    return "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(24))


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- service: the writes the API and admin share -------------------------------------------------------

def apply(entrypoint, *, create: bool, changed: list[str] | None = None) -> str | None:
    """Fill defaults and derived fields, give a new webhook entrypoint its slug and secret, and save.
    With `changed` (an update), only those columns and the derived ones are written, so a concurrent
    write to another column (rotate-secret's webhook_secret) is kept. Returns the raw secret when one
    was generated (shown once), else None."""
    entrypoint.config = normalize_config(entrypoint.kind, entrypoint.config or {})
    entrypoint.specificity = derive_specificity(entrypoint.kind, entrypoint.config, entrypoint.filters,
                                                entrypoint.social_account_id)
    derived = ["config", "specificity", "updated_at"]
    secret = None
    if entrypoint.kind == EntrypointKind.WEBHOOK_INBOUND and not entrypoint.webhook_slug:
        entrypoint.webhook_slug = new_webhook_slug()
        secret = entrypoint.webhook_secret = new_webhook_secret()
        derived += ["webhook_slug", "webhook_secret"]
    if create or changed is None:
        entrypoint.save(force_insert=create)
    else:
        save_changes(entrypoint, {}, also=[*changed, *derived])
    return secret


def rotate_secret(entrypoint) -> str:
    """A new secret for a webhook entrypoint; the old one stops verifying immediately."""
    entrypoint.webhook_secret = new_webhook_secret()
    entrypoint.save(update_fields=["webhook_secret", "updated_at"])
    return entrypoint.webhook_secret
