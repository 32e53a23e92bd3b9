import pytest

from automations.graph.filters import evaluate, fields_used, validate_predicates
from tests import factories


@pytest.fixture
def person(org):
    return factories.contact(org, name="Alice", email="alice@example.com", tags=["vip", "beta"],
                             custom_fields={"plan": "Pro", "age": "42", "score": 7})


def p(field, op, value=None):
    item = {"field": field, "op": op}
    if value is not None:
        item["value"] = value
    return {"all": [item]}


def test_empty_predicates_are_true():
    assert evaluate({}) is True
    assert evaluate(None) is True


@pytest.mark.parametrize("predicate, expected", [
    (p("contact.name", "eq", "alice"), True),           # case-insensitive
    (p("contact.name", "neq", "bob"), True),
    (p("contact.email", "contains", "@EXAMPLE"), True),
    (p("contact.email", "not_contains", "gmail"), True),
    (p("fields.age", "gt", 40), True),                  # numeric string vs number
    (p("fields.age", "gte", "42"), True),
    (p("fields.score", "lt", 7), False),
    (p("fields.score", "lte", 7), True),
    (p("fields.plan", "in", ["free", "pro"]), True),
    (p("fields.plan", "not_in", ["free"]), True),
    (p("tags", "contains", "VIP"), True),
    (p("tags", "eq", "beta"), True),                    # list field: has element
    (p("tags", "in", ["x", "beta"]), True),
    (p("tags", "not_contains", "vip"), False),
    (p("contact.tags", "contains", "vip"), True),
    (p("fields.missing", "exists"), False),
    (p("fields.missing", "not_exists"), True),
    (p("fields.plan", "exists"), True),
    (p("fields.missing", "gt", 1), False),
    (p("fields.missing", "neq", "x"), True),
    (p("fields.missing", "not_in", ["x"]), True),
    (p("contact.phone", "exists"), False),              # empty string does not exist
])
def test_operators_on_contact_paths(person, predicate, expected):
    assert evaluate(predicate, contact=person) is expected


def test_state_and_context_paths():
    context = {"order": {"total": 120}, "choice": "large"}
    assert evaluate(p("state.order.total", "gt", 100), context=context)
    assert evaluate(p("context.choice", "eq", "LARGE"), context=context)
    assert not evaluate(p("state.nothing", "eq", "x"), context=context)


def test_groups_any_none_and_nesting(person):
    group = {"any": [{"field": "contact.name", "op": "eq", "value": "bob"},
                     {"all": [{"field": "tags", "op": "contains", "value": "vip"},
                              {"none": [{"field": "fields.plan", "op": "eq", "value": "free"}]}]}]}
    assert evaluate(group, contact=person)
    assert not evaluate({"none": [{"field": "tags", "op": "contains", "value": "vip"}]}, contact=person)
    assert not evaluate({"any": [{"field": "contact.name", "op": "eq", "value": "bob"}]}, contact=person)
    # several keys in one group must all hold
    assert not evaluate({"all": [{"field": "tags", "op": "contains", "value": "vip"}],
                         "none": [{"field": "tags", "op": "contains", "value": "beta"}]}, contact=person)


def test_malformed_predicates_evaluate_false_instead_of_raising(person):
    assert evaluate("nonsense", contact=person) is False
    assert evaluate({"all": ["x", 3]}, contact=person) is False


def test_validate_accepts_valid_groups():
    assert validate_predicates(None) == []
    assert validate_predicates({}) == []
    assert validate_predicates({"all": [{"field": "tags", "op": "contains", "value": "vip"},
                                        {"any": [{"field": "fields.x", "op": "exists"},
                                                 {"field": "state.y", "op": "in", "value": [1, 2]}]}]}) == []


@pytest.mark.parametrize("predicates, fragment", [
    ("text", "group must be an object"),
    ({"every": []}, "only the keys all, any, none"),
    ({"all": "x"}, "must be a list"),
    ({"all": [{"field": "nowhere.x", "op": "eq", "value": 1}]}, ".field"),
    ({"all": [{"field": "contact.name", "op": "like", "value": 1}]}, ".op"),
    ({"all": [{"field": "contact.name", "op": "eq"}]}, "required for op eq"),
    ({"all": [{"field": "contact.name", "op": "in", "value": "x"}]}, "needs a list"),
    ({"all": [{"field": "contact.name", "op": "eq", "value": [1]}]}, "single value"),
    ({"all": [{"field": "contact.name", "op": "eq", "value": 1, "extra": 2}]}, "unknown keys"),
    ({"all": [1]}, "predicate must be an object"),
])
def test_validate_reports_problems(predicates, fragment):
    problems = validate_predicates(predicates)
    assert problems and any(fragment in problem for problem in problems), problems


def test_validate_caps_depth():
    group = {"all": [{"field": "tags", "op": "exists"}]}
    for _ in range(10):
        group = {"all": [group]}
    assert any("nest" in problem for problem in validate_predicates(group))


def test_fields_used():
    assert fields_used({"all": [{"field": "tags", "op": "exists"}, {"any": [{"field": "fields.a", "op": "exists"}]}]}) \
        == ["tags", "fields.a"]
