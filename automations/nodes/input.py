"""`input` node: waits for the contact's next reply and captures it into `context[field]`.

Ports: `captured`, `invalid` (attempts exhausted), `timeout`, and `skip` iff `skip_allowed`.
`timeout` always exists (a stable port set is easier to wire); it only fires when `timeout_min` is
set. `max_retries` is the maximum total attempts (default 1).

The run waits with `waiting_for` input; an `input_timeout` job ends the wait through `timeout`, and with
no edge there the run exits `input_timeout`. The contact's next typed reply answers it (`answer`): valid
→ `captured`, "skip" → `skip`, invalid → asked again until the attempts are used up, then `invalid`."""

import re
from datetime import timedelta

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
from automations.graph.regex_guard import check_pattern, safe_regex_search
from automations.models import ExitReason, JobKind, WaitingFor
from automations.nodes.base import REPLY_KINDS, Answer, InboundReply, NodeResult, Wait

CONFIG_KEYS = ("field", "input_type", "max_retries", "timeout_min", "skip_allowed", "choices", "validation",
               "accepted_mime_types", "max_size_mb")
INPUT_TYPES = ("text", "email", "phone", "number", "choice", "file")
DEFAULT_MAX_RETRIES = 1
MAX_RETRIES = 10
MAX_TIMEOUT_MIN = 60 * 24 * 30
MAX_CHOICES = 50
MAX_FILE_MB = 100
SKIP_WORDS = {"skip"}
ATTEMPTS_KEY = "input_attempts"  # context[ATTEMPTS_KEY][node_key] = invalid attempts so far

WAIT = Wait(WaitingFor.INPUT, timeout_job=JobKind.INPUT_TIMEOUT, timeout_port="timeout",
            exit_if_unwired=ExitReason.INPUT_TIMEOUT)
WAITS = (WAIT,)
MAY_BE_ROOT = False


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
    config = ctx.config
    timeout = config.get("timeout_min")
    until = ctx.now + timedelta(minutes=timeout) if is_int(timeout) and timeout > 0 else None
    payload = {"field": config.get("field"), "input_type": config.get("input_type", "text"),
               "max_retries": config.get("max_retries", DEFAULT_MAX_RETRIES), "timeout_min": timeout}
    return NodeResult(payload=payload, rendered={"field": config.get("field")}, wait=WAIT.ending_at(until))


def answer(ctx, reply):
    """Take the contact's typed reply: "skip" (when allowed) → `skip`; valid → `captured`, stored under
    `context[field]`; invalid → asked again (port None) while attempts are left, then `invalid`. A tap or
    an event that is not a reply is not for this node (None)."""
    if reply.is_tap or reply.kind not in REPLY_KINDS:
        return None
    config = ctx.config
    node_key = ctx.key
    if "skip" in ctx.ports and (reply.text or "").strip().casefold() in SKIP_WORDS:
        return Answer("skip", payload={"reply": reply.summary(), "skipped": True})
    valid, value, reason = evaluate_input(config, reply)
    attempts = dict(ctx.context.get(ATTEMPTS_KEY) or {})
    attempt = int(attempts.get(node_key, 0)) + 1
    if valid:
        attempts.pop(node_key, None)
        target = config.get("field") or node_key
        return Answer("captured", context_updates={target: value, ATTEMPTS_KEY: attempts},
                      payload={"reply": reply.summary(), "captured": value, "attempt": attempt})
    max_attempts = config.get("max_retries") or 1
    attempts[node_key] = attempt
    payload = {"reply": reply.summary(), "invalid": reason, "attempt": attempt, "max_attempts": max_attempts}
    if attempt >= max_attempts:
        attempts.pop(node_key, None)
        return Answer("invalid", context_updates={ATTEMPTS_KEY: attempts}, payload=payload)
    return Answer(None, context_updates={ATTEMPTS_KEY: attempts}, payload=payload)


# -- reply validation ----------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalise_phone(text: str) -> str | None:
    compact = re.sub(r"[\s\-().]", "", text or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.match(compact) else None


def _number(text: str):
    cleaned = (text or "").strip().replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() else value


def _mime_ok(mime: str, accepted: list) -> bool:
    if not accepted:
        return True
    mime = (mime or "").lower()
    for pattern in accepted:
        pattern = str(pattern).lower()
        if pattern == mime or (pattern.endswith("/*") and mime.startswith(pattern[:-1])):
            return True
    return False


def evaluate_input(config: dict, reply: InboundReply) -> tuple[bool, object, str | None]:
    """(valid, captured value, reason if invalid) for one reply to an input node."""
    input_type = config.get("input_type") or "text"
    text = (reply.text or "").strip()
    validation = config.get("validation") if isinstance(config.get("validation"), dict) else {}
    if input_type == "file":
        files = [a for a in reply.attachments if isinstance(a, dict)]
        if not files:
            return False, None, "no_file"
        attachment = files[0]
        if not _mime_ok(attachment.get("mime_type", ""), config.get("accepted_mime_types") or []):
            return False, None, "mime_type_not_accepted"
        size = attachment.get("size_bytes") or attachment.get("size") or 0
        max_mb = config.get("max_size_mb")
        if max_mb and isinstance(size, int | float) and size > max_mb * 1024 * 1024:
            return False, None, "file_too_large"
        return True, attachment, None
    if not text:
        return False, None, "empty"
    if input_type == "email":
        return (True, text.lower(), None) if _EMAIL.match(text) else (False, None, "not_an_email")
    if input_type == "phone":
        phone = normalise_phone(text)
        return (True, phone, None) if phone else (False, None, "not_a_phone_number")
    if input_type == "number":
        value = _number(text)
        if value is None:
            return False, None, "not_a_number"
        if isinstance(validation.get("min"), int | float) and value < validation["min"]:
            return False, None, "below_min"
        if isinstance(validation.get("max"), int | float) and value > validation["max"]:
            return False, None, "above_max"
        return True, value, None
    if input_type == "choice":
        folded = text.casefold()
        for choice in config.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            words = [choice.get("value"), choice.get("label"), *(choice.get("match") or [])]
            if any(str(w).strip().casefold() == folded for w in words if w is not None):
                return True, choice.get("value"), None
        return False, None, "not_a_choice"
    # text
    if isinstance(validation.get("min"), int) and len(text) < validation["min"]:
        return False, None, "too_short"
    if isinstance(validation.get("max"), int) and len(text) > validation["max"]:
        return False, None, "too_long"
    pattern = validation.get("pattern")
    if isinstance(pattern, str) and pattern and safe_regex_search(pattern, text) is None:
        return False, None, "pattern_mismatch"
    return True, text, None
