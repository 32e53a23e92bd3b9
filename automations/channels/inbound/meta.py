"""The Meta webhook endpoint carries Messenger (`object: page`) and Instagram (`object: instagram`)."""

from __future__ import annotations

from automations.channels.inbound import instagram, messenger
from automations.channels.inbound.normalized import Skipped

_PARSERS = {"page": messenger.parse, "instagram": instagram.parse}


def parse(body: dict) -> list:
    parser = _PARSERS.get(str(body.get("object")))
    if parser is None:
        return [Skipped("unsupported", f"object {body.get('object')!r}")]
    return parser(body)
