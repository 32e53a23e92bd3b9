"""Instagram messaging through the Messenger API for Instagram (`POST <graph>/me/messages` with the
page's `access_token`): Messenger's shapes, text up to 1000 UTF-8 bytes, no call buttons."""

from __future__ import annotations

from automations.channels import graph
from automations.channels.base import clip_bytes
from automations.channels.messenger import MessengerProvider

TEXT_LIMIT_BYTES = 1000


class InstagramProvider(MessengerProvider):
    name = "instagram"
    platform = "Instagram"
    sendable_buttons = ("branch", "url")

    def clip_text(self, text: str) -> str:
        return clip_bytes(text, TEXT_LIMIT_BYTES)

    def verify(self, account) -> dict:
        """GET /<IG user id>: the token reaches this professional account; its username."""
        answer = graph.call(self.name, "GET", account.external_id, self.token(account), bearer=False,
                            params={"fields": "username,name"})
        return {"display_name": answer.get("username") or answer.get("name") or ""}

    def problems(self, config: dict) -> list[str]:
        from automations.nodes.message import list_of_dicts

        found = super().problems(config)
        for block in list_of_dicts((config or {}).get("blocks")):
            text = block.get("text") if block.get("type") == "text" else None
            if isinstance(text, str) and len(text.encode()) > TEXT_LIMIT_BYTES:
                found.append(f"Instagram text holds at most {TEXT_LIMIT_BYTES} bytes")
        return found
