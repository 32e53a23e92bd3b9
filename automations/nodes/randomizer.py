"""`randomizer` node: picks a variant by weight → `variant.<key>`; the pick is sticky within a run."""

from automations.graph.config_checks import (
    as_dict,
    check_port_id,
    error,
    is_number,
    list_of_dicts,
    require_object,
    unique_ports,
    warn_unknown_keys,
    warning,
)
from automations.nodes.base import NodeResult

MAY_BE_ROOT = False

MAX_VARIANTS = 20


def variants(config) -> list[dict]:
    return [v for v in list_of_dicts(as_dict(config).get("variants")) if isinstance(v.get("key"), str)]


def derive_ports(config) -> list[str]:
    return unique_ports([f"variant.{v['key']}" for v in variants(config)])


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("variants",), issues)
    items = config.get("variants")
    if not isinstance(items, list) or not items:
        issues.append(error("invalid_config", "config.variants must be a non-empty list of {key, weight}."))
        return issues
    if len(items) > MAX_VARIANTS:
        issues.append(error("invalid_config", f"config.variants holds at most {MAX_VARIANTS} variants."))
    if len(items) == 1:
        issues.append(warning("single_variant", "A randomizer with one variant always takes it."))
    seen: set = set()
    for index, variant in enumerate(items):
        here = f"config.variants[{index}]"
        if not isinstance(variant, dict):
            issues.append(error("invalid_config", f"{here} must be an object {{key, weight, label?}}."))
            continue
        warn_unknown_keys(variant, ("key", "weight", "label"), issues, where=here)
        if check_port_id(variant.get("key"), f"{here}.key", issues):
            if variant["key"] in seen:
                issues.append(error("duplicate_id", f"{here}.key {variant['key']!r} is used twice.",
                                    port=f"variant.{variant['key']}"))
            seen.add(variant["key"])
        weight = variant.get("weight")
        if not is_number(weight) or weight <= 0:
            issues.append(error("invalid_weight", f"{here}.weight must be a number above zero."))
        if variant.get("label") is not None and not isinstance(variant["label"], str):
            issues.append(error("invalid_config", f"{here}.label must be a string."))
    return issues


STICKY_CONTEXT_KEY = "_randomizer"  # run.context[_randomizer][node_key] = the variant picked in this run


def handle(ctx):
    """Pick a variant by weight, or reuse the one this run already got at this node."""
    import random

    choices = [v for v in variants(ctx.config) if is_number(v.get("weight")) and v["weight"] > 0]
    if not choices:
        raise ValueError("randomizer has no variant with a positive weight")
    keys = [v["key"] for v in choices]
    sticky = ctx.context.get(STICKY_CONTEXT_KEY)
    sticky = dict(sticky) if isinstance(sticky, dict) else {}
    picked = sticky.get(ctx.key)
    reused = picked in keys
    updates = {}
    if not reused:
        picked = random.choices(keys, weights=[v["weight"] for v in choices])[0]
        updates = {STICKY_CONTEXT_KEY: {**sticky, ctx.key: picked}}
    return NodeResult(port=f"variant.{picked}", payload={"variant": picked, "reused": reused},
                      rendered={"variant": picked}, context_updates=updates)
