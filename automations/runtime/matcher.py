"""Which automation an inbound event starts, when no waiting run consumed it.

The active entrypoints (of active automations) of the event's channel and kind are tried in
`Entrypoint.MATCH_ORDER` (most specific, lowest priority number, oldest) — read with the event's situation,
in one statement (`store.inbound.SITUATION`); the first whose account scope, kind config (keywords,
post/story ids, payloads, first-message rule) and contact filters all pass is the match. Every entrypoint
considered lands in the trace with the reason it was skipped, so "why was this contact never enrolled?"
has an answer.
Bindings are the fallback: `welcome_message` on the contact's first-ever inbound on the channel,
else `default_reply`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from automations.graph import filters
from automations.graph.regex_guard import safe_regex_search
from automations.models import (
    ActiveStatus,
    AutomationStatus,
    Binding,
    BindingType,
    Entrypoint,
    EntrypointKind,
    InboundKind,
)

MESSAGE_KINDS_WITH_KEYWORDS = {EntrypointKind.DM_RECEIVED, EntrypointKind.COMMENT_CREATED, EntrypointKind.STORY_REPLY,
                               EntrypointKind.STORY_MENTION}


@dataclass
class EventFacts:
    """What the matcher needs to know about one inbound event."""

    kind: str
    channel: str
    social_account_id: str
    text: str = ""
    post_id: str | None = None
    story_id: str | None = None
    parent_comment_id: str | None = None
    payload_id: str | None = None  # postback / button / quick-reply id
    first_message: bool = False  # first inbound in this conversation
    first_on_channel: bool = False  # first inbound of the contact on this channel (welcome_message)


@dataclass
class MatchDecision:
    entrypoint: Entrypoint | None = None
    binding: Binding | None = None
    trace: list[dict] = field(default_factory=list)


def keyword_matches(config: dict, text: str) -> bool:
    """Keywords with match_mode exact|contains|regex; no keywords means any text matches."""
    keywords = [k for k in (config.get("keywords") or []) if isinstance(k, str) and k]
    if not keywords:
        return True
    mode = config.get("match_mode") or "exact"
    case_sensitive = bool(config.get("case_sensitive"))
    text = text or ""
    if mode == "regex":
        flags = 0 if case_sensitive else re.IGNORECASE
        return any(safe_regex_search(k, text, flags=flags) is not None for k in keywords)
    subject = text.strip() if case_sensitive else text.strip().casefold()
    for keyword in keywords:
        needle = keyword.strip() if case_sensitive else keyword.strip().casefold()
        if mode == "contains" and needle in subject:
            return True
        if mode == "exact" and needle == subject:
            return True
    return False


def _config_skip_reason(entrypoint: Entrypoint, facts: EventFacts) -> str | None:
    config = entrypoint.config or {}
    kind = entrypoint.kind
    if kind == EntrypointKind.DM_RECEIVED and config.get("first_message_only") and not facts.first_message:
        return "not_first_message"
    if kind == EntrypointKind.COMMENT_CREATED:
        post_ids = config.get("post_ids") or []
        if post_ids and facts.post_id not in post_ids:
            return "post_not_listed"
        if facts.parent_comment_id and config.get("include_replies") is False:
            return "comment_reply_excluded"
    if kind in {EntrypointKind.STORY_REPLY, EntrypointKind.STORY_MENTION}:
        story_ids = config.get("story_ids") or []
        if story_ids and facts.story_id not in story_ids:
            return "story_not_listed"
    if kind == EntrypointKind.POSTBACK:
        payloads = config.get("payloads") or []
        if payloads and facts.payload_id not in payloads:
            return "payload_not_listed"
    if kind in MESSAGE_KINDS_WITH_KEYWORDS and not keyword_matches(config, facts.text):
        return "keyword_mismatch"
    return None


def match_entrypoint(facts: EventFacts, contact, decision: MatchDecision, candidates: list[Entrypoint],
                     passed_over: dict | None = None) -> Entrypoint | None:
    """The first of `candidates` (in match order) that takes the event; each one tried lands in the trace."""
    passed_over = passed_over or {}
    for entrypoint in candidates:
        entry = {"entrypoint_id": entrypoint.id, "automation_id": entrypoint.automation_id,
                 "specificity": entrypoint.specificity, "priority": entrypoint.priority}
        reason = passed_over.get(entrypoint.automation_id)
        if reason is None and entrypoint.social_account_id and entrypoint.social_account_id != facts.social_account_id:
            reason = "other_account"
        if reason is None:
            reason = _config_skip_reason(entrypoint, facts)
        if reason is None and entrypoint.filters and not filters.evaluate(entrypoint.filters, contact=contact,
                                                                          context={}):
            reason = "filters_failed"
        entry["result"] = reason or "matched"
        decision.trace.append(entry)
        if reason is None:
            decision.entrypoint = entrypoint
            return entrypoint
    return None


def match_binding(organization_id: str, facts: EventFacts, decision: MatchDecision,
                  passed_over: dict | None = None) -> Binding | None:
    wanted = [BindingType.WELCOME_MESSAGE, BindingType.DEFAULT_REPLY] if facts.first_on_channel else [
        BindingType.DEFAULT_REPLY]
    bindings = {
        b.binding_type: b
        for b in Binding.objects.filter(
            organization_id=organization_id, social_account_id=facts.social_account_id,
            binding_type__in=wanted, status=ActiveStatus.ACTIVE, automation__status=AutomationStatus.ACTIVE,
        ).select_related("automation")
    }
    passed_over = passed_over or {}
    for binding_type in wanted:
        binding = bindings.get(binding_type)
        if binding is not None:
            skipped = passed_over.get(binding.automation_id)
            decision.trace.append({"binding_id": binding.id, "binding_type": binding_type,
                                   "automation_id": binding.automation_id, "result": skipped or "matched"})
            if skipped:
                continue
            decision.binding = binding
            return binding
    decision.trace.append({"bindings": [str(t) for t in wanted], "result": "none_active"})
    return None


def decide(organization_id: str, facts: EventFacts, contact, *, candidates: list[Entrypoint],
           passed_over: dict | None = None) -> MatchDecision:
    """Pick the entrypoint, else the binding, for an event no waiting run consumed (`candidates`: the
    event's active entrypoints in match order, as `store.inbound.SITUATION` reads them). `passed_over` {automation_id:
    reason}: automations enrollment already refused for this event (a pause scoped to them); their
    entrypoints and bindings are skipped with that reason, so the next match can take the event."""
    decision = MatchDecision()
    matched = match_entrypoint(facts, contact, decision, candidates, passed_over)
    if matched is None and facts.kind == InboundKind.DM_RECEIVED:
        # Bindings answer direct messages only: a comment with no automation gets no default reply.
        match_binding(organization_id, facts, decision, passed_over)
    return decision
