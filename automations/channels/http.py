"""The one way providers talk HTTP: a pooled `requests.Session` per provider, connect/read timeouts,
a capped response body, and transport failures turned into `ChannelError`s.

A connect failure means nothing reached the platform (safe to retry); a read timeout means the request
went out and the answer did not come back, so the message may have been delivered (`AMBIGUOUS`).
Exception texts from `requests` carry the URL — with a Telegram token in the path or a Graph token in
the query — so they are never passed on: only the exception's type name is."""

from __future__ import annotations

import json
import threading

import requests
from requests.adapters import HTTPAdapter

from automations.channels.errors import ChannelError, ErrorClass

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
MAX_RESPONSE_BYTES = 1024 * 1024

_sessions: dict[str, requests.Session] = {}
_lock = threading.Lock()


def session(provider: str) -> requests.Session:
    """The provider's pooled session (created once per process; threads share it, as requests allows)."""
    with _lock:
        current = _sessions.get(provider)
        if current is None:
            current = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
            current.mount("https://", adapter)
            current.mount("http://", adapter)
            current.headers["User-Agent"] = "Relay/1.0"
            _sessions[provider] = current
        return current


def call(provider: str, method: str, url: str, *, json_body=None, params=None, headers=None) -> tuple[int, dict]:
    """Send one request; return (HTTP status, decoded JSON object). The body is read up to
    MAX_RESPONSE_BYTES; a non-JSON or oversized answer becomes {} (the caller classifies by status)."""
    try:
        response = session(provider).request(method, url, json=json_body, params=params, headers=headers,
                                             timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), stream=True,
                                             allow_redirects=False)
    except requests.ConnectTimeout as exc:
        raise ChannelError(ErrorClass.TRANSIENT, f"could not connect to {provider} ({type(exc).__name__})",
                           code="connect_timeout") from None
    except (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise ChannelError(ErrorClass.AMBIGUOUS, f"no answer from {provider} after the request was sent "
                           f"({type(exc).__name__})", code="timeout") from None
    except requests.ConnectionError as exc:
        raise ChannelError(ErrorClass.TRANSIENT, f"could not reach {provider} ({type(exc).__name__})",
                           code="connection_error") from None
    except requests.RequestException as exc:
        raise ChannelError(ErrorClass.TRANSIENT, f"request to {provider} failed ({type(exc).__name__})",
                           code="request_error") from None
    raw = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            raw += chunk
            if len(raw) > MAX_RESPONSE_BYTES:
                break
    except requests.RequestException as exc:  # the headers came: the request went out
        raise ChannelError(ErrorClass.AMBIGUOUS, f"{provider}'s answer was cut off ({type(exc).__name__})",
                           code="timeout") from None
    finally:
        response.close()
    body: dict = {}
    if len(raw) <= MAX_RESPONSE_BYTES:
        try:
            decoded = json.loads(bytes(raw) or b"{}")
            body = decoded if isinstance(decoded, dict) else {}
        except ValueError:
            body = {}
    return response.status_code, body
