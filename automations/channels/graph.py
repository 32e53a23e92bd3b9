"""Meta's Graph API, shared by WhatsApp, Messenger and Instagram: the URL, the error envelope and how
its codes map to what the runtime does (branch on `code`/`error_subcode`, never on the text)."""

from __future__ import annotations

from django.conf import settings

from automations.channels import http
from automations.channels.errors import ChannelError, ErrorClass

RATE_LIMIT_CODES = {4, 17, 32, 613, 80007, 130429, 131056}
# 10903: a comment that can no longer get a private reply (older than 7 days, hidden, Live ended);
# 10900 (the comment already had its one private reply) stays a plain refusal. Both from Messenger's
# private-replies error list, not in the reference and not confirmed in the platform's published docs:
# if the code differs, the refusal is a plain failure (the node's error port) instead of outside_window.
OUTSIDE_WINDOW = {131047, 10903}
OUTSIDE_WINDOW_SUBCODES = {2018278}
TOKEN_CODES = {190, 102, 463, 467}
PERMISSION_CODES = {10, *range(200, 300)}
TRANSIENT_CODES = {1, 2}


def url(path: str) -> str:
    return f"{settings.RELAY_META_GRAPH_BASE}/{settings.RELAY_META_GRAPH_VERSION}/{path.lstrip('/')}"


def classify(status: int, body: dict) -> ChannelError:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = error.get("code")
    subcode = error.get("error_subcode")
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    text = str(details or error.get("message") or f"HTTP {status}")[:500]
    label = str(code) if code is not None else str(status)
    if code in RATE_LIMIT_CODES or status == 429:
        return ChannelError(ErrorClass.RATE_LIMITED, text, code=label)
    if code in OUTSIDE_WINDOW or subcode in OUTSIDE_WINDOW_SUBCODES:
        return ChannelError(ErrorClass.OUTSIDE_WINDOW, text, code=label)
    if code in TOKEN_CODES or code in PERMISSION_CODES:
        return ChannelError(ErrorClass.NEEDS_REAUTH, text, code=label)
    if code in TRANSIENT_CODES or status >= 500:
        return ChannelError(ErrorClass.TRANSIENT, text, code=label)
    return ChannelError(ErrorClass.REJECTED, text, code=label)


def call(provider: str, method: str, path: str, token: str, *, body: dict | None = None,
         bearer: bool = True, params: dict | None = None) -> dict:
    """One Graph request; the token goes in `Authorization: Bearer` (WhatsApp) or as the `access_token`
    parameter (Messenger, Instagram through a Page, as their Send API documents). Returns the decoded
    answer or raises ChannelError."""
    headers, query = {}, dict(params or {})
    if bearer:
        headers["Authorization"] = f"Bearer {token}"
    else:
        query["access_token"] = token
    status, answer = http.call(provider, method, url(path), json_body=body, params=query or None, headers=headers)
    if status == 200 and "error" not in answer:
        return answer
    raise classify(status, answer)
