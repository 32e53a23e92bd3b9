"""What went wrong talking to a platform, by what the runtime must do about it (not by platform code)."""

from __future__ import annotations

from django.db import models


class ErrorClass(models.TextChoices):
    RATE_LIMITED = "rate_limited"  # wait (retry_after when given) and send again; never a failure
    OUTSIDE_WINDOW = "outside_window"  # the messaging window is closed: failed, the node's `error` port
    NEEDS_REAUTH = "needs_reauth"  # bad/expired token: the account needs new credentials
    TRANSIENT = "transient"  # 5xx, connection refused, platform says "try again": retried up to a limit
    AMBIGUOUS = "ambiguous"  # timed out after the request went out: maybe sent, never resent blindly
    REJECTED = "rejected"  # the platform refused this message (blocked, bad recipient…): failed


class DeliveryError(Exception):
    """Nothing can be sent (no conversation, account not usable): the message node's `error` port,
    decided before anything is written."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ChannelError(Exception):
    """A platform call that did not succeed. `code` is the platform's own code as a string (Graph
    `code`, Telegram `error_code`) or a short word of ours; `message` never holds a credential."""

    def __init__(self, error_class: str, message: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.error_class = error_class
        self.code = code
        self.retry_after = retry_after

    @property
    def message_code(self) -> str:
        """What `Message.error_code` stores: our stable word for the classes the runtime acts on, the
        platform's code for the rest."""
        if self.error_class in (ErrorClass.OUTSIDE_WINDOW, ErrorClass.NEEDS_REAUTH, ErrorClass.RATE_LIMITED):
            return str(self.error_class)
        return self.code or str(self.error_class)
