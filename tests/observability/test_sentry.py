"""SENTRY_DSN set: an error raised in a request reaches the Sentry server named by the DSN (here a local HTTP
server that checks the key as Sentry does), without personal data. Unset: the SDK stays off."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from relay.database import database_url
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"

RAISE_IN_A_REQUEST = """
import sys, types
import django
django.setup()
import sentry_sdk
from django.test import Client, override_settings
from django.urls import path

def boom(request):
    raise ZeroDivisionError("raised in a view")

urls = types.ModuleType("sentry_check_urls")
urls.urlpatterns = [path("boom", boom)]
sys.modules["sentry_check_urls"] = urls
with override_settings(ROOT_URLCONF="sentry_check_urls"):
    status = Client(raise_request_exception=False).get(
        "/boom", HTTP_COOKIE="sessionid=cookie-secret", HTTP_AUTHORIZATION="Bearer key-secret",
        REMOTE_ADDR="203.0.113.7").status_code
sentry_sdk.flush(timeout=10)
print(status, sentry_sdk.get_client().is_active())
"""


def _envelope_endpoint(handler):
    """Sentry's ingestion: the key from the DSN in X-Sentry-Auth, else 401."""
    if f"sentry_key={PUBLIC_KEY}" not in handler.headers.get("X-Sentry-Auth", ""):
        return 401, {}, b'{"detail": "missing authorization"}'
    return 200, {"Content-Type": "application/json"}, b'{"id": "1"}'


def _run(dsn: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env.update({"DATABASE_URL": database_url(), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay.settings",
                "LOG_LEVEL": "CRITICAL"})
    if dsn:
        env["SENTRY_DSN"] = dsn
    done = subprocess.run([sys.executable, "-c", RAISE_IN_A_REQUEST], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return done


def _events(requests) -> list[dict]:
    events = []
    for request in requests:
        body = request["body"]
        if request["headers"].get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_with_a_dsn_an_error_in_a_request_reaches_sentry_without_personal_data():
    with factories.local_http_server({"/api/42/envelope/": _envelope_endpoint}) as server:
        host = server.url.removeprefix("http://")
        done = _run(f"http://{PUBLIC_KEY}@{host}/42")
    assert done.stdout.split() == ["500", "True"]
    events = _events(server.requests)
    assert events, server.requests
    [exception] = events[0]["exception"]["values"][-1:]
    assert (exception["type"], exception["value"]) == ("ZeroDivisionError", "raised in a view")
    raw = b"".join(r["body"] if r["headers"].get("Content-Encoding") != "gzip" else gzip.decompress(r["body"])
                   for r in server.requests)
    for secret in (b"cookie-secret", b"key-secret", b"203.0.113.7"):
        assert secret not in raw


def test_without_a_dsn_nothing_is_initialised_or_sent():
    with factories.local_http_server({"/api/42/envelope/": _envelope_endpoint}) as server:
        done = _run(None)
    assert done.stdout.split() == ["500", "False"]
    assert server.requests == []
