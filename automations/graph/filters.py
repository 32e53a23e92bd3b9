"""Predicate groups shared by condition nodes and entrypoint filters.

Grammar: `{"all"|"any"|"none": [item, ...]}` where an item is a predicate `{field, op, value}` or a
nested group. A group may hold several of the three keys; all of them must hold. Empty predicates
(`None`, `{}`) are true.

Paths: `contact.<field>` (id, name, email, phone, tags, first_name, ... else a custom field),
`fields.<slug>` (custom fields, dotted), `tags` (the contact's tags), `state.<key>` / `context.<key>`
(the run context, dotted).

Comparison rules (documented so both builders and the runtime agree):
- strings compare case-insensitively and trimmed; numbers (and numeric strings) compare as numbers;
- `eq`/`neq` against a list field (tags) mean "has / has not that element";
- `contains`: substring for strings, element for lists; `in`/`not_in`: value is a list of candidates
  (a list field matches when any element is a candidate);
- `exists` is false for missing, null, "" and []; comparisons on a missing value are false, and the
  negative ops (`neq`, `not_contains`, `not_in`) are true.
"""

from automations.graph.merge_tags import MISSING, contact_value, custom_fields_of, dig, is_missing

GROUP_KEYS = ("all", "any", "none")
OPS = ("eq", "neq", "contains", "not_contains", "gt", "gte", "lt", "lte", "exists", "not_exists", "in", "not_in")
UNARY_OPS = ("exists", "not_exists")
LIST_OPS = ("in", "not_in")
PATH_PREFIXES = ("contact.", "fields.", "state.", "context.")
MAX_DEPTH = 6
MAX_ITEMS = 100


def resolve(field: str, *, contact=None, context=None):
    if field == "tags":
        return contact_value(contact, "tags")
    head, _, rest = field.partition(".")
    if head == "contact":
        return contact_value(contact, rest)
    if head == "fields":
        return dig(custom_fields_of(contact), rest)
    if head in ("state", "context"):
        return dig(context or {}, rest)
    return MISSING


def _norm(value):
    if isinstance(value, str):
        return value.strip().casefold()
    return value


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _equal(a, b) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return _norm(a) == _norm(b)


def _compare(actual, expected):
    """-1/0/1, or None when the two are not comparable."""
    na, nb = _number(actual), _number(expected)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    if isinstance(actual, str) and isinstance(expected, str):
        a, b = _norm(actual), _norm(expected)
        return (a > b) - (a < b)
    return None


def _present(actual) -> bool:
    return not (is_missing(actual) or actual is None or actual == "" or actual == [] or actual == {})


def _contains(actual, expected) -> bool:
    if isinstance(actual, list | tuple):
        return any(_equal(item, expected) for item in actual)
    if isinstance(actual, str) and expected is not None:
        return str(_norm(str(expected))) in _norm(actual)
    if isinstance(actual, dict):
        return expected in actual
    return False


def _in(actual, candidates) -> bool:
    if not isinstance(candidates, list | tuple):
        candidates = [candidates]
    if isinstance(actual, list | tuple):
        return any(_equal(item, c) for item in actual for c in candidates)
    return any(_equal(actual, c) for c in candidates)


def check(actual, op: str, expected) -> bool:
    if op == "exists":
        return _present(actual)
    if op == "not_exists":
        return not _present(actual)
    missing = is_missing(actual) or actual is None
    if op == "eq":
        if missing:
            return expected is None
        if isinstance(actual, list | tuple) and not isinstance(expected, list | tuple):
            return _contains(actual, expected)
        if isinstance(actual, list | tuple):
            return sorted(map(_norm, actual), key=str) == sorted(map(_norm, expected), key=str)
        return _equal(actual, expected)
    if op == "neq":
        return not check(actual, "eq", expected)
    if op == "contains":
        return not missing and _contains(actual, expected)
    if op == "not_contains":
        return missing or not _contains(actual, expected)
    if op == "in":
        return not missing and _in(actual, expected)
    if op == "not_in":
        return missing or not _in(actual, expected)
    if op in ("gt", "gte", "lt", "lte"):
        if missing:
            return False
        order = _compare(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    return False


def _is_group(item) -> bool:
    return isinstance(item, dict) and "field" not in item and any(k in item for k in GROUP_KEYS)


def _evaluate_item(item, contact, context) -> bool:
    if _is_group(item):
        return _evaluate_group(item, contact, context)
    if not isinstance(item, dict):
        return False
    actual = resolve(str(item.get("field", "")), contact=contact, context=context)
    return check(actual, item.get("op", ""), item.get("value"))


def _evaluate_group(group: dict, contact, context) -> bool:
    for key in GROUP_KEYS:
        if key not in group:
            continue
        items = group[key] or []
        results = (_evaluate_item(item, contact, context) for item in items)
        if key == "all" and not all(results):
            return False
        if key == "any" and items and not any(results):
            return False
        if key == "none" and any(results):
            return False
    return True


def evaluate(predicates, *, contact=None, context=None) -> bool:
    """True when the contact/context satisfies the predicate group. Empty predicates are true.
    Malformed input evaluates to False rather than raising (validate_predicates guards saves)."""
    if not predicates:
        return True
    if not isinstance(predicates, dict):
        return False
    try:
        return _evaluate_group(predicates, contact, context)
    except Exception:  # noqa: BLE001 - a malformed stored predicate must not crash the runner
        return False


def _valid_path(field) -> bool:
    if not isinstance(field, str):
        return False
    if field == "tags":
        return True
    return any(field.startswith(p) and len(field) > len(p) and ".." not in field for p in PATH_PREFIXES)


def _validate_group(group, where: str, depth: int, errors: list, counter: list):
    if not isinstance(group, dict):
        errors.append(f"{where}: a group must be an object with all/any/none")
        return
    unknown = sorted(set(group) - set(GROUP_KEYS))
    if unknown or not group:
        errors.append(f"{where}: a group takes only the keys all, any, none (got {sorted(group) or 'nothing'})")
        return
    if depth > MAX_DEPTH:
        errors.append(f"{where}: groups nest at most {MAX_DEPTH} levels")
        return
    for key in GROUP_KEYS:
        if key not in group:
            continue
        items = group[key]
        if not isinstance(items, list):
            errors.append(f"{where}.{key}: must be a list")
            continue
        for index, item in enumerate(items):
            here = f"{where}.{key}[{index}]"
            counter[0] += 1
            if counter[0] > MAX_ITEMS:
                errors.append(f"{here}: at most {MAX_ITEMS} predicates in total")
                return
            if _is_group(item):
                _validate_group(item, here, depth + 1, errors, counter)
            else:
                _validate_predicate(item, here, errors)


def _validate_predicate(item, where: str, errors: list):
    if not isinstance(item, dict):
        errors.append(f"{where}: a predicate must be an object {{field, op, value}}")
        return
    unknown = sorted(set(item) - {"field", "op", "value"})
    if unknown:
        errors.append(f"{where}: unknown keys {unknown}")
    if not _valid_path(item.get("field")):
        errors.append(f"{where}.field: must be tags, contact.<field>, fields.<slug>, state.<key> or context.<key>")
    op = item.get("op")
    if op not in OPS:
        errors.append(f"{where}.op: must be one of {', '.join(OPS)}")
        return
    if op in UNARY_OPS:
        return
    if "value" not in item:
        errors.append(f"{where}.value: required for op {op}")
        return
    value = item["value"]
    if op in LIST_OPS and not isinstance(value, list):
        errors.append(f"{where}.value: op {op} needs a list of values")
    elif op not in LIST_OPS and isinstance(value, list | dict):
        errors.append(f"{where}.value: op {op} needs a single value, not a {type(value).__name__}")


def validate_predicates(predicates) -> list[str]:
    """Human-readable problems with a predicate group; [] when it is valid (empty is valid)."""
    if predicates is None or predicates == {}:
        return []
    errors: list[str] = []
    _validate_group(predicates, "predicates", 1, errors, [0])
    return errors


def fields_used(predicates) -> list[str]:
    """Every `field` path referenced (entrypoint specificity and admin display)."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "field" in node:
                found.append(node["field"])
            for key in GROUP_KEYS:
                items = node.get(key)
                for item in items if isinstance(items, list) else []:
                    walk(item)

    walk(predicates)
    return found
