"""The default provider: nothing leaves Relay."""

from __future__ import annotations


class SandboxProvider:
    """Records outbound messages as Message rows only; delivery always succeeds.

    `records_in_transaction`: the Message row *is* the delivery, so it is written `sent` in the run's
    own transaction (one commit per advance, nothing after it). Such a provider's `deliver` must have no
    side effect: it names the row before the run write is known to win. A provider that talks to a network
    leaves this False and goes through the outbox: the row is written `pending` with the step and
    handed to `deliver` after commit (`effects.deliver_messages`)."""

    name = "sandbox"
    records_in_transaction = True
    chat_interval = account_interval = 0.0

    def check(self, account) -> None:
        """Raise DeliveryError if this account cannot send right now (a network provider checks its token)."""

    def deliver(self, message) -> str:
        return f"sandbox-{message.pk}"

    def verify(self, account) -> dict:
        return {"display_name": account.name}

    def problems(self, config: dict) -> list[str]:
        return []
