from automations.graph.merge_tags import render, render_value, tags_in
from tests import factories


def test_contact_fields_including_tags_and_first_name(org):
    person = factories.contact(org, name="Alice Smith", email="a@example.com", phone="+1555", tags=["vip", "beta"])
    text = render("Hi {{contact.first_name}} {{ contact.last_name }} <{{contact.email}}> {{contact.phone}} "
                  "{{contact.tags}} {{contact.id}}", contact=person)
    assert text == f"Hi Alice Smith <a@example.com> +1555 vip, beta {person.id}"


def test_context_dotted_paths_and_list_indexes():
    context = {"order": {"id": 1234, "items": [{"sku": "A1"}]}, "paid": True}
    assert render("#{{context.order.id}} {{context.order.items.0.sku}} {{state.paid}}", context=context) == \
        "#1234 A1 true"


def test_custom_fields_via_fields_and_contact_namespace(org):
    person = factories.contact(org, custom_fields={"plan": "pro", "address": {"city": "Oslo"}})
    assert render("{{fields.plan}}/{{fields.address.city}}/{{contact.plan}}", contact=person) == "pro/Oslo/pro"


def test_default_fallback_for_missing_and_empty_values(org):
    person = factories.contact(org, name="", email="")
    assert render("Hi {{contact.name|there}}! {{context.coupon | no coupon}}", contact=person, context={}) == \
        "Hi there! no coupon"
    assert render("{{context.x|fallback}}", context={"x": "set"}) == "set"


def test_unknown_tags_render_empty_and_never_raise():
    assert render("a{{unknown.tag}}b{{context}}c{{contact.name}}d{{fields.}}e", contact=None, context=None) == "abcde"
    assert render("{{context.a.b.c}}", context={"a": "string, not a dict"}) == ""
    assert render(None) == ""
    assert render(42) == "42"
    assert render("no tags {here}") == "no tags {here}"


def test_dict_contact_is_supported():
    person = {"name": "Bob", "custom_fields": {"plan": "x"}}
    assert render("{{contact.name}} {{fields.plan}}", contact=person) == "Bob x"


def test_render_value_walks_nested_structures(org):
    person = factories.contact(org, name="Alice")
    rendered = render_value({"a": ["{{contact.name}}", 3, {"b": "{{context.k}}"}], "n": None},
                            contact=person, context={"k": "v"})
    assert rendered == {"a": ["Alice", 3, {"b": "v"}], "n": None}


def test_structured_values_render_as_json():
    assert render("{{context.obj}}", context={"obj": {"a": 1}}) == '{"a": 1}'


def test_tags_in_lists_paths():
    assert tags_in("{{contact.name}} and {{context.x|d}}") == ["contact.name", "context.x"]
