"""Outbound HTTP for http_request nodes and webhook_out actions, with the contract's caps.

- timeout capped at 30 s for the whole exchange (connect + headers + body), not per socket read;
- request body at most 256 KiB, response body at most 512 KiB (read streaming, never more);
- only http/https; private, loopback, link-local, reserved and multicast destinations are refused
  unless settings.RELAY_HTTP_ALLOW_PRIVATE. The host is resolved ONCE, every address it resolves to
  is vetted, and the connection goes to the vetted address itself (the pool is keyed by that IP)
  while the Host header, TLS SNI and certificate verification keep using the host name — so a name
  that answers a public address to the check and a loopback one to the connect (DNS rebinding)
  never reaches the loopback; environment proxies are ignored for the same reason;
- redirects are not followed (a 3xx is returned as is; following one would mean vetting its target
  the same way).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

MAX_TIMEOUT_MS = 30_000
DEFAULT_TIMEOUT_MS = 10_000
MAX_REQUEST_BYTES = 256 * 1024
MAX_RESPONSE_BYTES = 512 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
KEPT_RESPONSE_HEADERS = ("content-type", "content-length", "date", "etag", "last-modified", "location",
                         "retry-after", "x-request-id")
USER_AGENT = "Relay-Automations/1.0"
CA_BUNDLE = requests.certs.where()  # the certificate authorities https destinations are verified against


class HttpError(Exception):
    """A request we refused or that failed before a complete response (code is stable)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class HttpResponse:
    status: int
    headers: dict = field(default_factory=dict)
    body: object = None  # parsed JSON when the response says JSON, else text
    elapsed_ms: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def as_dict(self) -> dict:
        return {"status": self.status, "headers": self.headers, "body": self.body}


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


@dataclass
class Destination:
    """Where a request goes: the URL's scheme, host name and port, and the one vetted address to
    connect to."""

    scheme: str
    hostname: str
    port: int
    address: str
    host_header: str


def resolve(hostname: str, port: int) -> list[str]:
    """The addresses `hostname` resolves to (one lookup)."""
    return [info[4][0] for info in socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)]


def check_destination(url: str) -> Destination:
    """Resolve `url`'s host once; raise HttpError unless it is an http(s) URL whose host resolves only
    to public addresses (any address with RELAY_HTTP_ALLOW_PRIVATE). Returns the address to pin."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise HttpError("invalid_url", f"not a valid URL: {url!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError("invalid_url", f"only http(s) URLs with a host are allowed: {url!r}")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError) as exc:
        raise HttpError("dns_failure", f"cannot resolve {parts.hostname}: {exc}")
    if not addresses:
        raise HttpError("dns_failure", f"{parts.hostname} resolves to no address")
    if not settings.RELAY_HTTP_ALLOW_PRIVATE and any(_refused_address(address) for address in addresses):
        raise HttpError("destination_refused",
                        f"{parts.hostname} resolves to a private, loopback or link-local address")
    return Destination(scheme=parts.scheme, hostname=parts.hostname, port=port,
                       address=addresses[0].split("%", 1)[0], host_header=parts.netloc.rsplit("@", 1)[-1])


class _PinnedAdapter(HTTPAdapter):
    """Connects to the vetted address only; SNI and the certificate check use the host name."""

    def __init__(self, destination: Destination):
        self.destination = destination
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = self.destination.address
        if self.destination.scheme == "https":
            pool_kwargs.update(server_hostname=self.destination.hostname, assert_hostname=self.destination.hostname)
        return host_params, pool_kwargs


def _pinned_session(destination: Destination) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # an environment proxy would resolve the name again
    session.verify = CA_BUNDLE
    adapter = _PinnedAdapter(destination)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _decode(raw: bytes, content_type: str, encoding: str | None):
    text = raw.decode(encoding or "utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            return text
    return text


def perform(method: str, url: str, *, headers: dict | None = None, body=None,
            timeout_ms: int | None = None) -> HttpResponse:
    """Send one request within the caps; return the response (any status) or raise HttpError."""
    method = (method or "GET").upper()
    if method not in METHODS:
        raise HttpError("invalid_method", f"method must be one of {', '.join(METHODS)}")
    destination = check_destination(url)
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    if data is not None and len(data) > MAX_REQUEST_BYTES:
        raise HttpError("request_too_large", f"request body is {len(data)} bytes; the cap is {MAX_REQUEST_BYTES}")
    timeout_s = min(int(timeout_ms or DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS) / 1000
    send_headers = {"User-Agent": USER_AGENT}
    send_headers.update({str(k): str(v) for k, v in (headers or {}).items() if str(k).lower() != "host"})
    send_headers["Host"] = destination.host_header
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        with _pinned_session(destination) as session, session.request(
                method, url, headers=send_headers, data=data, timeout=(timeout_s, timeout_s), stream=True,
                allow_redirects=False) as response:
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=16 * 1024):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise HttpError("response_too_large", f"response body exceeds {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise HttpError("timeout", f"no complete response within {timeout_s:g} s")
                chunks.append(chunk)
            kept = {name: response.headers[name] for name in KEPT_RESPONSE_HEADERS if name in response.headers}
            return HttpResponse(
                status=response.status_code,
                headers=kept,
                body=_decode(b"".join(chunks), response.headers.get("content-type", ""), response.encoding),
                elapsed_ms=int((time.monotonic() - started) * 1000),
            )
    except requests.Timeout:
        raise HttpError("timeout", f"no complete response within {timeout_s:g} s")
    except requests.RequestException as exc:
        raise HttpError("connection_failed", str(exc)[:300])
