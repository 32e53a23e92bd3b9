"""`input` node: waits for the contact's next reply and captures it into `context[field]`.

Ports: `captured`, `invalid` (attempts exhausted), `timeout`, and `skip` iff `skip_allowed`.
`timeout` always exists (a stable port set is easier to wire); it only fires when `timeout_min` is
set. `max_retries` is the maximum total attempts (default 1)."""

from automations.graph.config_checks import (
    as_dict,
    check_optional_bool,
    check_optional_positive_int,
    error,
    is_context_key,
    is_int,
    is_nonempty_str,
    is_number,
    require_object,
    warn_unknown_keys,
    warning,
)
from automations.graph.regex_guard import check_pattern

CONFIG_KEYS = ("field", "input_type", "max_retries", "timeout_min", "skip_allowed", "choices", "validation",
               "accepted_mime_types", "max_size_mb")
INPUT_TYPES = ("text", "email", "phone", "number", "choice", "file")
DEFAULT_MAX_RETRIES = 1
MAX_RETRIES = 10
MAX_TIMEOUT_MIN = 60 * 24 * 30
MAX_CHOICES = 50
MAX_FILE_MB = 100


def derive_ports(config) -> list[str]:
    ports = ["captured", "invalid", "timeout"]
    if as_dict(config).get("skip_allowed") is True:
        ports.append("skip")
    return ports


def _choice_words(choice: dict) -> set[str]:
    words = [choice.get("value"), choice.get("label")]
    match = choice.get("match")
    if isinstance(match, list):
        words += match
    return {str(w).strip().casefold() for w in words if isinstance(w, str | int | float) and str(w).strip()}


def _validate_choices(choices, issues: list):
    if not isinstance(choices, list) or not choices:
        issues.append(error("invalid_config", "config.choices must be a non-empty list for input_type choice."))
        return
    if len(choices) > MAX_CHOICES:
        issues.append(error("invalid_config", f"config.choices holds at most {MAX_CHOICES} items."))
    owner: dict[str, int] = {}
    for index, choice in enumerate(choices):
        here = f"config.choices[{index}]"
        if not isinstance(choice, dict):
            issues.append(error("invalid_config", f"{here} must be an object {{value, label, match}}."))
            continue
        value = choice.get("value")
        if not (is_nonempty_str(value, 200) or is_number(value)):
            issues.append(error("invalid_config", f"{here}.value is required."))
        if choice.get("label") is not None and not isinstance(choice["label"], str):
            issues.append(error("invalid_config", f"{here}.label must be a string."))
        match = choice.get("match")
        if match is not None and (not isinstance(match, list) or not all(isinstance(m, str) for m in match)):
            issues.append(error("invalid_config", f"{here}.match must be a list of strings."))
        for word in _choice_words(choice):
            if word in owner and owner[word] != index:
                issues.append(error("ambiguous_choice",
                                    f"{here}: {word!r} also matches config.choices[{owner[word]}] "
                                    "(compared case-insensitively)."))
            owner.setdefault(word, index)


def _validate_validation(rules, input_type, issues: list):
    if rules is None:
        return
    if not isinstance(rules, dict):
        issues.append(error("invalid_config", "config.validation must be an object {min, max, pattern}."))
        return
    warn_unknown_keys(rules, ("min", "max", "pattern"), issues, where="config.validation")
    for key in ("min", "max"):
        if rules.get(key) is not None and not is_number(rules[key]):
            issues.append(error("invalid_config", f"config.validation.{key} must be a number."))
    low, high = rules.get("min"), rules.get("max")
    if is_number(low) and is_number(high) and low > high:
        issues.append(error("invalid_config", "config.validation.min must not exceed max."))
    if rules.get("pattern") is not None:
        problem = check_pattern(rules["pattern"])
        if problem:
            issues.append(error("invalid_regex", f"config.validation.pattern {problem}."))
        if input_type in ("choice", "file"):
            issues.append(warning("ignored_setting", f"config.validation.pattern is ignored for {input_type}."))


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, CONFIG_KEYS, issues)
    if not is_context_key(config.get("field")):
        issues.append(error("invalid_config",
                            "config.field is required: the context key that stores the answer (letters, digits, "
                            "'_', dotted)."))
    input_type = config.get("input_type", "text")
    if input_type not in INPUT_TYPES:
        issues.append(error("invalid_config", f"config.input_type must be one of {', '.join(INPUT_TYPES)}."))
    retries = config.get("max_retries")
    if retries is not None and (not is_int(retries) or not 1 <= retries <= MAX_RETRIES):
        issues.append(error("invalid_config", f"config.max_retries (total attempts) must be 1..{MAX_RETRIES}."))
    check_optional_positive_int(config, "timeout_min", issues, maximum=MAX_TIMEOUT_MIN)
    check_optional_bool(config, "skip_allowed", issues)
    if input_type == "choice":
        _validate_choices(config.get("choices"), issues)
    elif config.get("choices") is not None:
        issues.append(warning("ignored_setting", "config.choices is only used by input_type choice."))
    _validate_validation(config.get("validation"), input_type, issues)
    mimes = config.get("accepted_mime_types")
    if mimes is not None and (not isinstance(mimes, list) or not all(is_nonempty_str(m, 100) for m in mimes)):
        issues.append(error("invalid_config", "config.accepted_mime_types must be a list of MIME types."))
    size = config.get("max_size_mb")
    if size is not None and (not is_number(size) or not 0 < size <= MAX_FILE_MB):
        issues.append(error("invalid_config", f"config.max_size_mb must be a number in (0, {MAX_FILE_MB}]."))
    return issues


def handle(ctx):
    """Park the run for the contact's answer (`waiting_for="input"`); `timeout_min` schedules an
    `input_timeout` job that resumes through `timeout`. The prompt is the message node before it."""
    from datetime import timedelta

    from automations.models import JobKind, WaitingFor
    from automations.runtime.context import NodeResult, Wait

    config = ctx.config
    timeout = config.get("timeout_min")
    until = ctx.now + timedelta(minutes=timeout) if is_int(timeout) and timeout > 0 else None
    payload = {"field": config.get("field"), "input_type": config.get("input_type", "text"),
               "max_retries": config.get("max_retries", DEFAULT_MAX_RETRIES), "timeout_min": timeout}
    return NodeResult(payload=payload, rendered={"field": config.get("field")},
                      wait=Wait(WaitingFor.INPUT, until, JobKind.INPUT_TIMEOUT if until else None, "timeout"))
