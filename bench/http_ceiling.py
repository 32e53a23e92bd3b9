"""The HTTP ceiling for (f): the least a DRF endpoint can do per request and still be comparable to
`POST /v1/inbound-events` — authenticate the API key (the same authentication class) and insert one row.

Mounted at `POST /bench/ceiling` only when RELAY_BENCH_ENDPOINTS is on (relay/urls.py); the bench creates
its table (`CEILING_TABLE`) in its own database before starting the server."""

from __future__ import annotations

import json

from django.db import connection
from rest_framework.response import Response
from rest_framework.views import APIView

CEILING_TABLE = "bench_http_ceiling"
CREATE_SQL = (f"CREATE TABLE IF NOT EXISTS {CEILING_TABLE} (id bigserial PRIMARY KEY, "
              "organization_id varchar(40) NOT NULL, payload jsonb NOT NULL, "
              "created_at timestamptz NOT NULL DEFAULT now())")
MAX_BODY = 64 * 1024


class CeilingView(APIView):
    """One authenticated INSERT per request, its id in a 202: the floor under any real endpoint."""

    def post(self, request):
        payload = json.dumps(request.data)[:MAX_BODY]
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {CEILING_TABLE} (organization_id, payload) VALUES (%s, %s) RETURNING id",
                           [request.organization.pk, payload])
            row_id = cursor.fetchone()[0]
        return Response({"id": row_id}, status=202)
