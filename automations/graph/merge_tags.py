"""Merge tags: `{{contact.name}}`, `{{context.order.id}}`, `{{fields.plan}}`, `{{x|default text}}`.

Rendering never raises: an unknown tag, a missing value or a broken path renders as the fallback
(or empty). The contact may be a Contact row or a plain dict (the simulator passes dicts)."""

import json
import re

TAG_RE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")

MISSING = object()
CONTACT_ATTRIBUTES = ("id", "name", "email", "phone", "tags", "created_at")


def _get(container, key):
    if isinstance(container, dict):
        return container.get(key, MISSING)
    if isinstance(container, list | tuple):
        try:
            return container[int(key)]
        except (ValueError, IndexError):
            return MISSING
    return MISSING


def dig(container, dotted: str):
    """Follow a dotted path through dicts (and list indexes); MISSING when any step is absent."""
    value = container
    for part in dotted.split("."):
        if part == "":
            return MISSING
        value = _get(value, part)
        if value is MISSING:
            return MISSING
    return value


def contact_value(contact, field: str):
    """`contact.<field>`: a built-in attribute, first_name/last_name, else a custom field."""
    if contact is None or not field:
        return MISSING
    if isinstance(contact, dict):
        data = contact
        custom = contact.get("custom_fields") or {}
    else:
        data = {name: getattr(contact, name, None) for name in CONTACT_ATTRIBUTES}
        custom = getattr(contact, "custom_fields", None) or {}
    head, _, rest = field.partition(".")
    if head in ("first_name", "last_name") and not rest:
        parts = (data.get("name") or "").split(maxsplit=1)
        if head == "first_name":
            return parts[0] if parts else MISSING
        return parts[1] if len(parts) > 1 else MISSING
    if head in ("fields", "custom_fields") and rest:
        return dig(custom, rest)
    if head in data and data[head] is not None:
        return dig(data[head], rest) if rest else data[head]
    return dig(custom, field)


def custom_fields_of(contact):
    if contact is None:
        return {}
    if isinstance(contact, dict):
        return contact.get("custom_fields") or {}
    return getattr(contact, "custom_fields", None) or {}


def lookup(path: str, *, contact=None, context=None):
    """Resolve a tag path to its raw value, or the module's MISSING sentinel."""
    namespace, _, rest = path.partition(".")
    if not rest:
        return MISSING
    if namespace == "contact":
        return contact_value(contact, rest)
    if namespace in ("context", "state"):
        return dig(context or {}, rest)
    if namespace == "fields":
        return dig(custom_fields_of(contact), rest)
    return MISSING


def is_missing(value) -> bool:
    return value is MISSING


def to_text(value) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def render(template, *, contact=None, context=None) -> str:
    """Replace every tag in `template`; non-strings are returned as text. Never raises."""
    if template is None:
        return ""
    if not isinstance(template, str):
        return to_text(template)

    def replace(match):
        path, fallback = match.group(1), match.group(2)
        try:
            text = to_text(lookup(path, contact=contact, context=context))
        except Exception:  # noqa: BLE001 - a broken value must never break a send
            text = ""
        if text == "" and fallback is not None:
            return fallback
        return text

    return TAG_RE.sub(replace, template)


def render_value(value, *, contact=None, context=None):
    """Render strings anywhere inside nested dicts/lists; other values are returned unchanged."""
    if isinstance(value, str):
        return render(value, contact=contact, context=context)
    if isinstance(value, dict):
        return {k: render_value(v, contact=contact, context=context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, contact=contact, context=context) for v in value]
    return value


def tags_in(template) -> list[str]:
    """The tag paths used in a string (for validators and the admin)."""
    if not isinstance(template, str):
        return []
    return [m.group(1) for m in TAG_RE.finditer(template)]
