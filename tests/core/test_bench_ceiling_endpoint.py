"""The benchmark's HTTP ceiling (bench/http_ceiling.py): not mounted unless RELAY_BENCH_ENDPOINTS is on; when
mounted it authenticates the API key like any endpoint and inserts exactly one row per request."""

import pytest
from django.db import connection
from rest_framework.test import APIRequestFactory

from bench.http_ceiling import CEILING_TABLE, CREATE_SQL, CeilingView


def test_not_mounted_by_default(api, settings):
    assert settings.RELAY_BENCH_ENDPOINTS is False
    assert api.post("/bench/ceiling", {"x": 1}, format="json").status_code == 404


@pytest.mark.django_db
def test_it_authenticates_the_key_and_inserts_one_row_per_request(org, api_key):
    with connection.cursor() as cursor:
        cursor.execute(CREATE_SQL)
    view = CeilingView.as_view()
    factory = APIRequestFactory()
    refused = view(factory.post("/bench/ceiling", {"x": 1}, format="json"))
    assert refused.status_code == 401
    answers = [view(factory.post("/bench/ceiling", {"n": n}, format="json", HTTP_AUTHORIZATION=f"Bearer {api_key}"))
               for n in range(3)]
    assert [a.status_code for a in answers] == [202] * 3
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, organization_id, payload->>'n' FROM {CEILING_TABLE} ORDER BY id")
        rows = cursor.fetchall()
    assert [(row[0], row[1], row[2]) for row in rows] == [(a.data["id"], org.pk, str(n)) for n, a in enumerate(answers)]
