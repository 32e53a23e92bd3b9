"""`message` node: ordered blocks (text, media, cards, galleries, typing delays), buttons and quick
replies. Branch buttons and quick replies each get a port and make the node wait; `wait_for_reply`
waits on a plain message and resumes through `next`; `no_response` exists iff a timeout is set.

It waits for a reply (`waiting_for` reply, ended by a `no_response_timeout` job through `no_response`), or
— on a network provider — first for the platform to accept its parts (`delivery`; `runtime.delivery`).
A tap on one of its buttons or quick replies, or a typed reply, answers it (`answer`)."""

from datetime import timedelta

from automations.graph.config_checks import (
    as_dict,
    check_optional_bool,
    check_optional_positive_int,
    check_port_id,
    error,
    is_http_url,
    is_nonempty_str,
    is_number,
    list_of_dicts,
    require_object,
    unique_ports,
    warn_unknown_keys,
    warning,
)
from automations.models import JobKind, StepOutcome, WaitingFor
from automations.nodes.base import REPLY_KINDS, Answer, NodeResult, Wait

CONFIG_KEYS = ("blocks", "quick_replies", "wait_for_reply", "no_response_timeout_min", "typing_indicator_seconds")
BLOCK_TYPES = ("text", "image", "video", "audio", "file", "card", "gallery", "delay")
MEDIA_TYPES = ("image", "video", "audio", "file")
BUTTON_TYPES = ("branch", "url", "call", "share")
MAX_BUTTONS = 3
MAX_QUICK_REPLIES = 13
MAX_GALLERY_CARDS = 10
MAX_BLOCKS = 20
MAX_TEXT_LENGTH = 2000
MAX_LABEL_LENGTH = 80
MAX_TIMEOUT_MIN = 60 * 24 * 30
# Channel limits (reference/configs.md): unsupported parts are skipped at send time -> warnings.
NO_CARDS = ("whatsapp", "telegram")
NO_AUDIO_FILE = ("instagram",)

REPLY_WAIT = Wait(WaitingFor.REPLY, timeout_job=JobKind.NO_RESPONSE_TIMEOUT, timeout_port="no_response")
# A message still being delivered takes a tap on a button it already sent, as it would once delivered.
DELIVERY_WAIT = Wait(WaitingFor.DELIVERY)
WAITS = (REPLY_WAIT, DELIVERY_WAIT)


def _button_containers(config: dict):
    """Every list of buttons in the message, in send order: text blocks, cards, gallery cards."""
    for block in list_of_dicts(config.get("blocks")):
        kind = block.get("type")
        if kind in ("text", "card"):
            yield block.get("buttons")
        elif kind == "gallery":
            for card in list_of_dicts(block.get("cards")):
                yield card.get("buttons")


def branch_buttons(config) -> list[dict]:
    config = as_dict(config)
    return [button for buttons in _button_containers(config) for button in list_of_dicts(buttons)
            if button.get("type") == "branch" and isinstance(button.get("id"), str)]


def quick_replies(config) -> list[dict]:
    return [qr for qr in list_of_dicts(as_dict(config).get("quick_replies")) if isinstance(qr.get("id"), str)]


def waits(config) -> bool:
    config = as_dict(config)
    return bool(branch_buttons(config) or quick_replies(config) or config.get("wait_for_reply") is True)


def derive_ports(config) -> list[str]:
    config = as_dict(config)
    ports = ["next", "error"]
    ports += [f"button.{b['id']}" for b in branch_buttons(config)]
    ports += [f"quick_reply.{q['id']}" for q in quick_replies(config)]
    if config.get("no_response_timeout_min") is not None:
        ports.append("no_response")
    return unique_ports(ports)


def _validate_buttons(buttons, where: str, issues: list, seen_ids: set):
    if buttons is None:
        return
    if not isinstance(buttons, list):
        issues.append(error("invalid_config", f"{where} must be a list."))
        return
    if len(buttons) > MAX_BUTTONS:
        issues.append(error("too_many_buttons", f"{where} has {len(buttons)} buttons; at most {MAX_BUTTONS}."))
    for index, button in enumerate(buttons):
        here = f"{where}[{index}]"
        if not isinstance(button, dict):
            issues.append(error("invalid_config", f"{here} must be an object."))
            continue
        kind = button.get("type")
        if kind not in BUTTON_TYPES:
            issues.append(error("invalid_config", f"{here}.type must be one of {', '.join(BUTTON_TYPES)}."))
        if check_port_id(button.get("id"), f"{here}.id", issues):
            if button["id"] in seen_ids:
                issues.append(error("duplicate_id", f"{here}.id {button['id']!r} is used twice in this message.",
                                    port=f"button.{button['id']}"))
            seen_ids.add(button["id"])
        if kind != "share" and not is_nonempty_str(button.get("label"), MAX_LABEL_LENGTH):
            issues.append(error("invalid_config", f"{here}.label is required (at most {MAX_LABEL_LENGTH} chars)."))
        if kind == "url" and not is_http_url(button.get("url")):
            issues.append(error("invalid_url", f"{here}.url must be an http(s) URL."))
        if kind == "call" and not is_nonempty_str(button.get("phone"), 32):
            issues.append(error("invalid_config", f"{here}.phone is required for a call button."))


def _validate_card(card, where: str, issues: list, seen_ids: set):
    if not isinstance(card, dict):
        issues.append(error("invalid_config", f"{where} must be an object."))
        return
    if not is_nonempty_str(card.get("title"), MAX_LABEL_LENGTH):
        issues.append(error("invalid_config", f"{where}.title is required (at most {MAX_LABEL_LENGTH} chars)."))
    if card.get("media_ref") is not None and not is_nonempty_str(card.get("media_ref")):
        issues.append(error("invalid_config", f"{where}.media_ref must be a non-empty string."))
    _validate_buttons(card.get("buttons"), f"{where}.buttons", issues, seen_ids)


def _validate_block(block, where: str, channel, issues: list, seen_ids: set):
    if not isinstance(block, dict):
        issues.append(error("invalid_config", f"{where} must be an object."))
        return
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        issues.append(error("invalid_config", f"{where}.type must be one of {', '.join(BLOCK_TYPES)}."))
        return
    if block.get("id") is not None and not is_nonempty_str(block.get("id"), 64):
        issues.append(error("invalid_config", f"{where}.id must be a short string."))
    if kind == "text":
        if not is_nonempty_str(block.get("text"), MAX_TEXT_LENGTH):
            issues.append(error("invalid_config", f"{where}.text is required (at most {MAX_TEXT_LENGTH} chars)."))
        _validate_buttons(block.get("buttons"), f"{where}.buttons", issues, seen_ids)
    elif kind in MEDIA_TYPES:
        if not is_nonempty_str(block.get("media_ref")):
            issues.append(error("invalid_config", f"{where}.media_ref is required."))
        if kind in ("image", "video") and block.get("caption") is not None and not isinstance(block["caption"], str):
            issues.append(error("invalid_config", f"{where}.caption must be a string."))
        if kind in ("audio", "file") and channel in NO_AUDIO_FILE:
            issues.append(warning("unsupported_on_channel", f"{where}: {kind} blocks are not sent on {channel}."))
    elif kind == "card":
        _validate_card(block, where, issues, seen_ids)
    elif kind == "gallery":
        cards = block.get("cards")
        if not isinstance(cards, list) or not 1 <= len(cards) <= MAX_GALLERY_CARDS:
            issues.append(error("too_many_cards" if isinstance(cards, list) and cards else "invalid_config",
                                f"{where}.cards must hold 1 to {MAX_GALLERY_CARDS} cards."))
        for index, card in enumerate(cards if isinstance(cards, list) else []):
            _validate_card(card, f"{where}.cards[{index}]", issues, seen_ids)
    elif kind == "delay":
        seconds = block.get("seconds")
        if not is_number(seconds) or not 0.5 <= seconds <= 10:
            issues.append(error("invalid_config", f"{where}.seconds must be a number from 0.5 to 10."))
    if kind in ("card", "gallery") and channel in NO_CARDS:
        issues.append(warning("unsupported_on_channel", f"{where}: {kind} blocks are not sent on {channel}."))


def _validate_quick_replies(replies, issues: list):
    if replies is None:
        return
    if not isinstance(replies, list):
        issues.append(error("invalid_config", "config.quick_replies must be a list."))
        return
    if len(replies) > MAX_QUICK_REPLIES:
        issues.append(error("too_many_quick_replies",
                            f"config.quick_replies has {len(replies)} items; at most {MAX_QUICK_REPLIES}."))
    seen: set = set()
    for index, reply in enumerate(replies):
        here = f"config.quick_replies[{index}]"
        if not isinstance(reply, dict):
            issues.append(error("invalid_config", f"{here} must be an object."))
            continue
        if check_port_id(reply.get("id"), f"{here}.id", issues):
            if reply["id"] in seen:
                issues.append(error("duplicate_id", f"{here}.id {reply['id']!r} is used twice.",
                                    port=f"quick_reply.{reply['id']}"))
            seen.add(reply["id"])
        if not is_nonempty_str(reply.get("label"), MAX_LABEL_LENGTH):
            issues.append(error("invalid_config", f"{here}.label is required (at most {MAX_LABEL_LENGTH} chars)."))
        if reply.get("icon") is not None and not isinstance(reply["icon"], str):
            issues.append(error("invalid_config", f"{here}.icon must be a string."))


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    channel = getattr(automation, "channel", None)
    warn_unknown_keys(config, CONFIG_KEYS, issues)
    blocks = config.get("blocks", [])
    if not isinstance(blocks, list):
        issues.append(error("invalid_config", "config.blocks must be a list."))
        blocks = []
    if len(blocks) > MAX_BLOCKS:
        issues.append(error("invalid_config", f"config.blocks holds at most {MAX_BLOCKS} blocks."))
    seen_button_ids: set = set()
    for index, block in enumerate(blocks):
        _validate_block(block, f"config.blocks[{index}]", channel, issues, seen_button_ids)
    _validate_quick_replies(config.get("quick_replies"), issues)
    check_optional_bool(config, "wait_for_reply", issues)
    check_optional_positive_int(config, "no_response_timeout_min", issues, maximum=MAX_TIMEOUT_MIN)
    if config.get("no_response_timeout_min") is not None and not waits(config):
        issues.append(error("no_response_without_wait",
                              "no_response_timeout_min only fires on a message that waits (buttons, quick "
                              "replies or wait_for_reply).", port="no_response"))
    typing = config.get("typing_indicator_seconds")
    if typing is not None and (not is_number(typing) or not 0 <= typing <= 10):
        issues.append(error("invalid_config", "config.typing_indicator_seconds must be a number from 0 to 10."))
    if channel is not None:
        from automations.channels.registry import capability_problems

        issues += [error("channel_capability", problem) for problem in capability_problems(channel, config)]
    return issues


# -- runtime -------------------------------------------------------------------------------------------

def _render_buttons(ctx, buttons) -> list[dict]:
    rendered = []
    for button in list_of_dicts(buttons)[:MAX_BUTTONS]:
        item = {"id": button.get("id"), "type": button.get("type"), "label": ctx.render(button.get("label"))}
        for key in ("url", "phone"):
            if button.get(key) is not None:
                item[key] = ctx.render(button[key])
        rendered.append(item)
    return rendered


def _render_card(ctx, card: dict) -> dict:
    item = {"title": ctx.render(card.get("title")), "buttons": _render_buttons(ctx, card.get("buttons"))}
    if card.get("subtitle") is not None:
        item["subtitle"] = ctx.render(card["subtitle"])
    if card.get("media_ref") is not None:
        item["media_ref"] = ctx.render(card["media_ref"])
    return item


def render_parts(ctx, config: dict, channel) -> tuple[list[dict], list[dict]]:
    """The outbound parts (one provider message each) in order, merge tags resolved, and the parts
    skipped because the channel cannot carry them."""
    parts: list[dict] = []
    skipped: list[dict] = []
    typing = 0.0
    for index, block in enumerate(list_of_dicts(config.get("blocks"))):
        kind = block.get("type")
        if kind == "delay":
            typing += block.get("seconds") if is_number(block.get("seconds")) else 0
            continue
        if (kind in ("card", "gallery") and channel in NO_CARDS) or (
                kind in ("audio", "file") and channel in NO_AUDIO_FILE):
            skipped.append({"block": index, "type": kind, "reason": f"not supported on {channel}"})
            continue
        if kind == "text":
            part = {"type": "text", "text": ctx.render(block.get("text"))}
            if block.get("buttons"):
                part["buttons"] = _render_buttons(ctx, block["buttons"])
            if not part["text"].strip() and not part.get("buttons"):
                skipped.append({"block": index, "type": kind, "reason": "empty after merge tags"})
                continue
        elif kind in MEDIA_TYPES:
            part = {"type": kind, "media_ref": ctx.render(block.get("media_ref"))}
            if kind in ("image", "video") and block.get("caption") is not None:
                part["caption"] = ctx.render(block["caption"])
        elif kind == "card":
            part = {"type": "card", **_render_card(ctx, block)}
        elif kind == "gallery":
            part = {"type": "gallery",
                    "cards": [_render_card(ctx, c) for c in list_of_dicts(block.get("cards"))[:MAX_GALLERY_CARDS]]}
        else:
            skipped.append({"block": index, "type": kind, "reason": "unknown block type"})
            continue
        if block.get("id") is not None:
            part["block_id"] = block["id"]
        if typing:
            part["typing_before_seconds"] = typing
            typing = 0.0
        parts.append(part)
    replies = quick_replies(config)
    if replies and parts:
        parts[-1]["quick_replies"] = [{"id": q["id"], "label": ctx.render(q.get("label")),
                                       **({"icon": q["icon"]} if q.get("icon") else {})}
                                      for q in replies[:MAX_QUICK_REPLIES]]
    if parts and is_number(config.get("typing_indicator_seconds")) and config["typing_indicator_seconds"] > 0:
        parts[0]["typing_indicator_seconds"] = config["typing_indicator_seconds"]
    return parts, skipped


def handle(ctx):
    """Render and send the blocks through `effects` (the account's provider). Waits for a reply when
    the message has branch buttons, quick replies or wait_for_reply (`no_response` job if configured);
    otherwise leaves through `next`. Blocks of which none can be sent, or a delivery failure → `error`;
    no blocks at all → nothing is sent. On a network provider the node first waits for the platform's
    answer (runtime.delivery)."""
    from automations.runtime.effects import DeliveryError

    config = ctx.config
    parts, skipped = render_parts(ctx, config, getattr(ctx.automation, "channel", None))
    text = "\n".join(p["text"] for p in parts if p.get("type") == "text" and p.get("text"))
    rendered = {"text": text, "parts": parts}
    payload = {"rendered_text": text, "parts": parts}
    if skipped:
        payload["skipped"] = skipped
    if not parts and skipped:
        return NodeResult(port="error", outcome=StepOutcome.FAILED, payload=payload, rendered=rendered,
                          error={"code": "nothing_deliverable", "message": "no block can be sent on this channel"})
    if parts:  # a message without blocks sends nothing: it exists to wait for a reply (or to pass through)
        try:
            ids = ctx.effects.send_message(node_key=ctx.key, parts=parts)
        except DeliveryError as exc:
            return NodeResult(port="error", outcome=StepOutcome.FAILED, payload=payload, rendered=rendered,
                              error={"code": exc.code, "message": str(exc)})
        payload = {"message_id": ids[0], "message_ids": ids, **payload}
        if getattr(ctx.effects, "awaits_delivery", False):
            # Sent after commit by a network provider: the node moves on once the platform answered
            # (runtime.delivery.settle), through `error` if a part failed.
            return NodeResult(payload=payload, rendered=rendered, wait=DELIVERY_WAIT)
    if not waits(config):
        return NodeResult(port="next", payload=payload, rendered=rendered)
    return NodeResult(payload=payload, rendered=rendered, wait=reply_wait(config, ctx.now))


def reply_wait(config, now):
    """The wait for a reply, with its `no_response` timeout when one is configured (also used once the
    platform accepted the parts: runtime.delivery)."""
    timeout = as_dict(config).get("no_response_timeout_min")
    return REPLY_WAIT.ending_at(now + timedelta(minutes=timeout) if is_number(timeout) and timeout > 0 else None)


def answer(ctx, reply):
    """A tap on one of this message's buttons/quick replies leaves through its port; once the message is
    delivered, a typed reply equal to a button's or quick reply's label counts as the tap, and any other
    typed reply leaves through `next` when the message waits for a reply. None: not for this run."""
    port = _answered_port(ctx, reply)
    if port is None:
        return None
    if reply.is_tap or port.startswith(("button.", "quick_reply.")):
        updates = {"last_button": {"node_key": ctx.key, "port": port, "id": port.split(".", 1)[1]}}
    else:
        updates = {"last_reply": reply.text}
    return Answer(port, payload={"reply": reply.summary()}, context_updates=updates)


def _answered_port(ctx, reply) -> str | None:
    if reply.is_tap:
        return reply.tap_port if reply.tap_port in ctx.ports else None
    if ctx.run.waiting_for == WaitingFor.DELIVERY:  # typed text answers the message once it is all out
        return None
    if reply.kind not in REPLY_KINDS:
        return None
    port = label_port(ctx.config, reply.text)
    if port in ctx.ports:
        return port
    return "next" if ctx.config.get("wait_for_reply") else None


def label_port(config: dict, text: str) -> str | None:
    """A typed reply equal to a branch button's or quick reply's label acts as the tap."""
    folded = (text or "").strip().casefold()
    if not folded:
        return None
    for button in branch_buttons(config):
        if str(button.get("label", "")).strip().casefold() == folded:
            return f"button.{button.get('id')}"
    for quick in config.get("quick_replies") or []:
        if isinstance(quick, dict) and str(quick.get("label", "")).strip().casefold() == folded:
            return f"quick_reply.{quick.get('id')}"
    return None
