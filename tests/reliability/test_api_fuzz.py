"""Schemathesis against the OpenAPI schema at /v1/schema: every operation, called through the WSGI app
with a valid API key, with generated valid (positive) and invalid (negative) requests. No answer may
be a 5xx, and every 4xx must carry the JSON error format {"error": {"code", "message", "details"}}.

Bounded: a few examples per operation and mode, derandomized so CI sees the same requests each run."""

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from relay.wsgi import application
from tests import factories

EXAMPLES = 5


def load_schema():
    return schemathesis.openapi.from_wsgi("/v1/schema", application)


SCHEMA = load_schema()
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


def problem(response) -> str | None:
    """What is wrong with this answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}: {response.content[:2000]!r}"
    if status < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        return f"{status} with content-type {content_type!r}: {response.content[:500]!r}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{status} with a body that is not JSON: {response.content[:500]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
            and isinstance(error.get("details"), dict)):
        return f"{status} not in the error format: {body!r}"
    return None


@pytest.fixture
def wsgi_calls_keep_the_test_transaction():
    """Schemathesis calls the real WSGI handler, whose request signals would close the connection that
    holds the test's transaction; Django's own test client disconnects them the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_schema_lists_operations():
    assert len(OPERATIONS) >= 30  # a broken schema view would silently fuzz nothing


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_never_fails_with_5xx_and_errors_are_json(label, mode, wsgi_calls_keep_the_test_transaction):
    org = factories.organization()
    _, raw = factories.api_key(org)
    factories.contact(org, account=factories.social_account(org))
    headers = {"Authorization": f"Bearer {raw}"}
    failures = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    def call(case):
        response = case.call(headers=headers)
        found = problem(response)
        if found:
            failures.append(f"{case.method} {case.formatted_path} body={case.body!r} query={case.query!r}: {found}")

    try:
        call()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (free-form strings only): no negative case exists.
        assert mode == GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:5])
