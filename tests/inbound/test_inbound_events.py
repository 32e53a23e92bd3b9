"""POST /v1/inbound-events: idempotency, contact upsert, matcher rules, bindings, pause and re-entry."""

import pytest

from automations.models import AutomationRun, InboundEvent, RunStatus
from contacts.models import Contact, ContactIdentity, Conversation, Message
from tests import factories
from tests.inbound.helpers import active_flow, event, make_entrypoint, reply_flow, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def outbound_texts(contact):
    return list(Message.objects.filter(conversation__contact=contact, direction="outbound")
                .order_by("created_at", "id").values_list("text", flat=True))


def test_keyword_enrolls_creates_contact_and_answers(api, org, account, django_capture_on_commit_callbacks):
    automation = reply_flow(org, "Hi {{contact.name}}, here is your link")
    make_entrypoint(automation, config={"keywords": ["LINK"], "match_mode": "exact"})
    body = send(api, django_capture_on_commit_callbacks, event(account, "link"))
    assert body["outcome"] == "enrolled"
    contact = Contact.objects.get(pk=body["contact_id"])
    assert ContactIdentity.objects.get(contact=contact).platform_user_id == "psid-1"
    assert Conversation.objects.get(pk=body["conversation_id"]).contact_id == contact.id
    run = AutomationRun.objects.get(pk=body["run_id"])
    assert run.status == RunStatus.COMPLETED
    assert run.context["trigger"]["text"] == "link"
    assert outbound_texts(contact) == ["Hi Alice, here is your link"]
    assert InboundEvent.objects.get(event_id=body["event_id"]).outcome == "enrolled"


def test_same_event_id_twice_is_processed_once(api, org, account, django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    first = send(api, django_capture_on_commit_callbacks, event(account, "hi", event_id="dup-1"))
    second = send(api, django_capture_on_commit_callbacks, event(account, "hi", event_id="dup-1"))
    assert first["outcome"] == "enrolled"
    assert second["outcome"] == "duplicate"
    assert second["contact_id"] == first["contact_id"] and second["run_id"] is None
    assert Message.objects.filter(direction="inbound").count() == 1
    assert AutomationRun.objects.count() == 1


def test_known_contact_id_is_used_and_message_logged(api, org, account, django_capture_on_commit_callbacks):
    person = factories.contact(org)
    body = {"event_id": "e-1", "social_account_id": account.id, "kind": "dm_received", "contact_id": person.id,
            "text": "hello"}
    result = send(api, django_capture_on_commit_callbacks, body)
    assert result["contact_id"] == person.id
    assert result["outcome"] == "no_match"
    assert Message.objects.get(direction="inbound").text == "hello"


def test_event_body_is_validated(api, account):
    assert api.post("/v1/inbound-events", {"event_id": "x", "social_account_id": account.id, "kind": "dm_received"},
                    format="json").status_code == 400  # neither contact nor contact_id
    bad_kind = api.post("/v1/inbound-events", event(account, "x", kind="telepathy"), format="json")
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["error"]["details"]
    unknown = api.post("/v1/inbound-events", {**event(account, "x"), "mood": "happy"}, format="json")
    assert unknown.json()["error"]["code"] == "unknown_field"
    assert InboundEvent.objects.count() == 0 and Contact.objects.count() == 0


def test_other_orgs_account_is_rejected(api, other_org):
    foreign = factories.social_account(other_org)
    response = api.post("/v1/inbound-events", event(foreign, "hi"), format="json")
    assert response.status_code == 404  # another organization's id: not found, as in a path
    assert response.json()["error"]["details"] == {"field": "social_account_id", "id": foreign.id}
    assert InboundEvent.objects.count() == 0


def test_no_match_is_recorded_with_trace(api, org, account, django_capture_on_commit_callbacks):
    entry = make_entrypoint(reply_flow(org), config={"keywords": ["price"], "match_mode": "exact"})
    body = send(api, django_capture_on_commit_callbacks, event(account, "hello"))
    assert body["outcome"] == "no_match" and body["run_id"] is None
    trace = InboundEvent.objects.get(event_id=body["event_id"]).trace
    assert {"entrypoint_id": entry.id, "result": "keyword_mismatch"}.items() <= trace[0].items()


@pytest.mark.parametrize("mode,keyword,text,case_sensitive,matches", [
    ("exact", "price", "  PRICE ", False, True),
    ("exact", "price", "price please", False, False),
    ("exact", "Price", "price", True, False),
    ("contains", "price", "what is the PRICE?", False, True),
    ("contains", "Price", "what is the price?", True, False),
    ("regex", r"^order\s+#?\d+$", "Order #123", False, True),
    ("regex", r"^order\s+#?\d+$", "order abc", False, False),
])
def test_keyword_match_modes(api, org, account, django_capture_on_commit_callbacks, mode, keyword, text,
                             case_sensitive, matches):
    make_entrypoint(reply_flow(org), config={"keywords": [keyword], "match_mode": mode,
                                             "case_sensitive": case_sensitive})
    body = send(api, django_capture_on_commit_callbacks, event(account, text))
    assert body["outcome"] == ("enrolled" if matches else "no_match")


def test_first_message_only(api, org, account, django_capture_on_commit_callbacks):
    automation = reply_flow(org)
    make_entrypoint(automation, config={"first_message_only": True}, reentry_cooldown_min=0)
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "enrolled"
    assert send(api, django_capture_on_commit_callbacks, event(account, "again"))["outcome"] == "no_match"


def test_specificity_beats_priority(api, org, account, django_capture_on_commit_callbacks):
    catch_all = reply_flow(org, "catch-all")
    keyword = reply_flow(org, "keyword")
    make_entrypoint(catch_all, priority=1)  # specificity 0, best priority
    make_entrypoint(keyword, config={"keywords": ["menu"]}, priority=500)  # specificity 30
    body = send(api, django_capture_on_commit_callbacks, event(account, "menu"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == keyword.id


def test_priority_then_age_break_ties(api, org, account, django_capture_on_commit_callbacks):
    older, newer, best = reply_flow(org, "older"), reply_flow(org, "newer"), reply_flow(org, "best")
    make_entrypoint(older, config={"keywords": ["go"]}, priority=50)
    make_entrypoint(newer, config={"keywords": ["go"]}, priority=50)
    body = send(api, django_capture_on_commit_callbacks, event(account, "go", user="u1"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == older.id
    make_entrypoint(best, config={"keywords": ["go"]}, priority=10)
    body = send(api, django_capture_on_commit_callbacks, event(account, "go", user="u2"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == best.id


def test_specificity_tiers_in_order(api, org, account, django_capture_on_commit_callbacks):
    """30 keyword > 25 post ids > 20 filtered > 10 account-scoped > 0 catch-all, for one comment."""
    names = ["catch_all", "account", "filtered", "asset", "keyword"]
    autos = {name: reply_flow(org, name) for name in names}
    make_entrypoint(autos["catch_all"], kind="comment_created")
    make_entrypoint(autos["account"], kind="comment_created", social_account=account)
    make_entrypoint(autos["filtered"], kind="comment_created",
                    filters={"all": [{"field": "contact.name", "op": "eq", "value": "Alice"}]})
    make_entrypoint(autos["asset"], kind="comment_created", config={"post_ids": ["p1"]})
    make_entrypoint(autos["keyword"], kind="comment_created", config={"keywords": ["deal"]})
    winners = []
    for user in ["a", "b", "c", "d", "e"]:
        body = send(api, django_capture_on_commit_callbacks,
                    event(account, "deal", kind="comment_created", post_id="p1", user=user))
        winner = AutomationRun.objects.get(pk=body["run_id"]).automation_id
        winners.append(next(n for n, a in autos.items() if a.id == winner))
        autos_entry = autos[winners[-1]].entrypoints.get()
        autos_entry.status = "paused"
        autos_entry.save()
    assert winners == ["keyword", "asset", "filtered", "account", "catch_all"]


def test_contains_keywords_rank_like_a_catch_all(api, org, account, django_capture_on_commit_callbacks):
    """`contains` keywords add no specificity: an account-scoped catch-all (10) and a filtered entrypoint
    (20) win over them, and among catch-alls priority decides."""
    contains = reply_flow(org, "contains")
    make_entrypoint(contains, config={"keywords": ["price"], "match_mode": "contains"}, priority=50)
    catch_all = reply_flow(org, "catch-all")
    make_entrypoint(catch_all, priority=60)
    assert contains.entrypoints.get().specificity == 0
    body = send(api, django_capture_on_commit_callbacks, event(account, "what is the price?", user="u1"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == contains.id  # priority 50 < 60
    scoped = reply_flow(org, "scoped")
    make_entrypoint(scoped, social_account=account, priority=500)
    body = send(api, django_capture_on_commit_callbacks, event(account, "what is the price?", user="u2"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == scoped.id
    filtered = reply_flow(org, "filtered")
    make_entrypoint(filtered, filters={"all": [{"field": "contact.name", "op": "eq", "value": "Alice"}]})
    body = send(api, django_capture_on_commit_callbacks, event(account, "what is the price?", user="u3"))
    assert AutomationRun.objects.get(pk=body["run_id"]).automation_id == filtered.id


def test_account_scoped_filters_and_post_ids_skip(api, org, account, django_capture_on_commit_callbacks):
    other_account = factories.social_account(org)
    make_entrypoint(reply_flow(org), social_account=other_account)
    make_entrypoint(reply_flow(org), kind="comment_created", config={"post_ids": ["p9"]})
    make_entrypoint(reply_flow(org), filters={"all": [{"field": "tags", "op": "contains", "value": "vip"}]})
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert body["outcome"] == "no_match"
    trace = InboundEvent.objects.get(event_id=body["event_id"]).trace
    results = [t["result"] for t in trace if "entrypoint_id" in t]
    assert trace[-1]["result"] == "none_active"  # then the bindings were tried
    assert sorted(results) == ["filters_failed", "other_account"]
    comment = send(api, django_capture_on_commit_callbacks,
                   event(account, "hi", kind="comment_created", post_id="p1"))
    assert comment["outcome"] == "no_match"


def test_inactive_automation_or_entrypoint_never_matches(api, org, account, django_capture_on_commit_callbacks):
    paused_auto = reply_flow(org)
    paused_auto.status = "paused"
    paused_auto.save()
    make_entrypoint(paused_auto)
    make_entrypoint(reply_flow(org), status="paused")
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "no_match"


def test_paused_contact_is_not_enrolled(api, org, account, django_capture_on_commit_callbacks):
    automation = reply_flow(org)
    make_entrypoint(automation)
    person = factories.contact(org, account=account, platform_user_id="psid-1")
    api.post(f"/v1/contacts/{person.id}/automation-pause", {"pause_reason": "manual_takeover"}, format="json")
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert body["outcome"] == "contact_paused"
    assert outbound_texts(person) == []
    skip = AutomationRun.objects.get(contact=person)
    assert (skip.status, skip.exit_reason) == ("exited", "contact_paused")


def test_a_pause_for_one_automation_lets_the_next_match_enroll(api, org, account,
                                                               django_capture_on_commit_callbacks):
    paused_for = reply_flow(org, "from A")
    entry_a = make_entrypoint(paused_for, config={"keywords": ["hi"]})  # specificity 30: matched first
    other = reply_flow(org, "from B")
    make_entrypoint(other)  # catch-all
    person = factories.contact(org, account=account, platform_user_id="psid-1")
    response = api.post(f"/v1/contacts/{person.id}/automation-pause",
                        {"automation_id": paused_for.id, "pause_reason": "manual_takeover"}, format="json")
    assert response.status_code == 201, response.json()
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert body["outcome"] == "enrolled"
    run = AutomationRun.objects.get(pk=body["run_id"])
    assert (run.automation_id, run.status) == (other.id, "completed")
    assert outbound_texts(person) == ["from B"]
    skip = AutomationRun.objects.get(contact=person, automation=paused_for)
    assert (skip.status, skip.exit_reason) == ("exited", "contact_paused")
    stored = InboundEvent.objects.get(event_id=body["event_id"])
    assert (stored.outcome, stored.run_id) == ("enrolled", run.id)
    results = {t["entrypoint_id"]: t["result"] for t in stored.trace if "entrypoint_id" in t}
    assert results[entry_a.id] == "contact_paused" and list(results.values()) == ["contact_paused", "matched"]


def test_a_pause_for_one_automation_falls_through_to_a_binding(api, org, account,
                                                                django_capture_on_commit_callbacks):
    paused_for = reply_flow(org, "from A")
    make_entrypoint(paused_for, config={"keywords": ["hi"]})
    factories.binding(reply_flow(org, "default"), account, "default_reply")
    person = factories.contact(org, account=account, platform_user_id="psid-1")
    api.post(f"/v1/contacts/{person.id}/automation-pause",
             {"automation_id": paused_for.id, "pause_reason": "manual_takeover"}, format="json")
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "enrolled"
    assert outbound_texts(person) == ["default"]


def test_a_pause_for_the_only_match_is_contact_paused(api, org, account, django_capture_on_commit_callbacks):
    paused_for = reply_flow(org, "from A")
    make_entrypoint(paused_for, config={"keywords": ["hi"]})
    make_entrypoint(reply_flow(org, "other keyword"), config={"keywords": ["bye"]})
    person = factories.contact(org, account=account, platform_user_id="psid-1")
    api.post(f"/v1/contacts/{person.id}/automation-pause",
             {"automation_id": paused_for.id, "pause_reason": "manual_takeover"}, format="json")
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert body["outcome"] == "contact_paused"
    skip = AutomationRun.objects.get(contact=person)
    assert (skip.automation_id, skip.exit_reason, body["run_id"]) == (paused_for.id, "contact_paused", skip.id)
    assert outbound_texts(person) == []


def test_a_global_pause_still_blocks_every_match(api, org, account, django_capture_on_commit_callbacks):
    first, second = reply_flow(org, "from A"), reply_flow(org, "from B")
    make_entrypoint(first, config={"keywords": ["hi"]})
    make_entrypoint(second)
    factories.binding(reply_flow(org, "default"), account, "default_reply")
    person = factories.contact(org, account=account, platform_user_id="psid-1")
    api.post(f"/v1/contacts/{person.id}/automation-pause",
             {"automation_id": second.id, "pause_reason": "manual_takeover"}, format="json")
    api.post(f"/v1/contacts/{person.id}/automation-pause", {"pause_reason": "operator_paused"}, format="json")
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert body["outcome"] == "contact_paused"
    assert outbound_texts(person) == []
    assert list(AutomationRun.objects.filter(contact=person).values_list("automation_id", "exit_reason")) == \
        [(first.id, "contact_paused")]


def test_reentry_blocked_does_not_fall_through_to_bindings(api, org, account, django_capture_on_commit_callbacks):
    waiting = active_flow(org, [("ask", "message", {"blocks": [{"type": "text", "text": "Pick one", "buttons": [
        {"id": "yes", "type": "branch", "label": "Yes"}]}]})])
    make_entrypoint(waiting, config={"keywords": ["start"]})
    factories.binding(reply_flow(org, "default"), account, "default_reply")
    first = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    assert first["outcome"] == "enrolled"
    assert AutomationRun.objects.get(pk=first["run_id"]).status == "waiting"
    blocked = send(api, django_capture_on_commit_callbacks, event(account, "start"))
    assert blocked["outcome"] == "reentry_blocked"
    person = Contact.objects.get(pk=blocked["contact_id"])
    assert outbound_texts(person) == ["Pick one"]  # no default reply
    assert AutomationRun.objects.filter(contact=person, exit_reason="reentry_cooldown").count() == 1


def test_cooldown_blocks_until_it_passes(api, org, account, django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]}, reentry_cooldown_min=60)
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "enrolled"
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "reentry_blocked"
    AutomationRun.objects.filter(status="completed").update(completed_at="2020-01-01T00:00:00Z")
    assert send(api, django_capture_on_commit_callbacks, event(account, "hi"))["outcome"] == "enrolled"


def test_welcome_message_then_default_reply(api, org, account, django_capture_on_commit_callbacks):
    factories.binding(reply_flow(org, "welcome!"), account, "welcome_message")
    factories.binding(reply_flow(org, "default"), account, "default_reply",
                      config={"reentry_cooldown_min": 0})
    first = send(api, django_capture_on_commit_callbacks, event(account, "hey"))
    second = send(api, django_capture_on_commit_callbacks, event(account, "hey again"))
    assert (first["outcome"], second["outcome"]) == ("enrolled", "enrolled")
    person = Contact.objects.get(pk=first["contact_id"])
    assert outbound_texts(person) == ["welcome!", "default"]


def test_entrypoint_wins_over_bindings(api, org, account, django_capture_on_commit_callbacks):
    factories.binding(reply_flow(org, "welcome!"), account, "welcome_message")
    make_entrypoint(reply_flow(org, "keyword"), config={"keywords": ["hi"]})
    body = send(api, django_capture_on_commit_callbacks, event(account, "hi"))
    assert outbound_texts(Contact.objects.get(pk=body["contact_id"])) == ["keyword"]


def test_postback_entrypoint_matches_payload(api, org, account, django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org, "menu"), kind="postback", config={"payloads": ["MENU"]})
    body = send(api, django_capture_on_commit_callbacks,
                event(account, None, kind="postback", interactive={"type": "button", "id": "MENU"}))
    assert body["outcome"] == "enrolled"
