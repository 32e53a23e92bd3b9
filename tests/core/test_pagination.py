import pytest

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
