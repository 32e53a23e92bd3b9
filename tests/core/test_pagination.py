import pytest

from automations.models import AutomationRun
from tests import factories

pytestmark = pytest.mark.django_db


def test_cursor_pagination_walks_every_row_once_newest_first(api, org):
    created = [factories.contact(org).id for _ in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/v1/contacts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).json()
        pages += 1
        seen += [row["id"] for row in body["data"]]
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert pages == 3
    assert seen == list(reversed(created))


def test_default_limit_is_50(api, org):
    for _ in range(52):
        factories.contact(org)
    body = api.get("/v1/contacts").json()
    assert len(body["data"]) == 50 and body["has_more"] is True


def _cursor(values) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


HAND_MADE_CURSORS = [[123, "x"], [{"a": 1}, "x"], ["2020-01-01T00:00:00+00:00", None], [None, None],
                     ["2020-01-01T00:00:00", "x"], ["2020-01-01T00:00:00+00:00", True], "%%%", [1], "not-a-list"]


@pytest.mark.parametrize("values", HAND_MADE_CURSORS)
def test_hand_made_cursor_is_a_400_invalid_cursor(api, org, account, values):
    automation = factories.automation(org)
    contact = factories.contact(org)
    run = AutomationRun.objects.create(organization=org, automation=automation, contact=contact)
    cursor = values if values == "%%%" else _cursor(values)
    for path in ["/v1/contacts", f"/v1/automations/{automation.id}/runs", f"/v1/automation-runs/{run.id}/steps"]:
        response = api.get(path, {"cursor": cursor})
        assert response.status_code == 400, (path, response.json())
        assert response.json()["error"]["code"] == "invalid_cursor"


def test_step_cursor_with_a_string_id_is_a_400(api, org):
    automation = factories.automation(org)
    run = AutomationRun.objects.create(organization=org, automation=automation, contact=factories.contact(org))
    response = api.get(f"/v1/automation-runs/{run.id}/steps",
                       {"cursor": _cursor(["2020-01-01T00:00:00+00:00", "abc"])})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_limit_200_is_accepted_and_above_the_max_is_a_400(api, org):
    for _ in range(3):
        factories.contact(org)
    assert api.get("/v1/contacts?limit=200").status_code == 200
    assert len(api.get("/v1/contacts?limit=200").json()["data"]) == 3
    too_many = api.get("/v1/contacts?limit=500")
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "invalid_limit"
