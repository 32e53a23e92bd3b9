"""Each rule exists once, in the store: the pause rule decides enrollment and the runner's parking alike,
re-entry is decided from the prior runs `STANDING` reads, and the candidate entrypoints are the ones
`SITUATION` reads. Rows are decoded by name into frozen dataclasses; every statement uses named parameters."""

import dataclasses
import importlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.runtime import internal_events, matcher
from automations.runtime.effects import Effects
from automations.runtime.enrollment import MANUAL, TRIGGER, enroll, reentry_blocked
from automations.runtime.runner import LiveDriver
from automations.store import enrollment as enrollment_store
from automations.store import inbound as inbound_store
from automations.store.enrollment import PriorRuns
from contacts.models import ContactAutomationControl, Message
from tests import factories

ACTIVE_FLOW = [("hi", "message", {"blocks": [{"type": "text", "text": "hi"}]})]

# Pause rows ({"scope": "this" | "other" | "all", "minutes": None (until resumed) | minutes from now}) → does
# a pause apply to "this" automation, and is the one reported global?
PAUSE_CASES = {
    "none": ([], None),
    "global until resumed": ([{"scope": "all", "minutes": None}], "global"),
    "this automation until resumed": ([{"scope": "this", "minutes": None}], "scoped"),
    "another automation only": ([{"scope": "other", "minutes": None}], None),
    "global expired": ([{"scope": "all", "minutes": -5}], None),
    "this automation, ending later": ([{"scope": "this", "minutes": 30}], "scoped"),
    "this automation expired": ([{"scope": "this", "minutes": -1}], None),
    "global first when both apply": ([{"scope": "this", "minutes": None}, {"scope": "all", "minutes": 30}], "global"),
    "expired global, live scoped": ([{"scope": "all", "minutes": -1}, {"scope": "this", "minutes": 10}], "scoped"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(PAUSE_CASES))
def test_one_pause_rule_decides_enrollment_and_the_runners_parking(org, account, contact, monkeypatch, case):
    monkeypatch.setattr("automations.runtime.enrollment.enqueue_advance", lambda run_id: None)
    this = factories.automation(org, factories.flow(ACTIVE_FLOW), status="active")
    other = factories.automation(org, factories.flow(ACTIVE_FLOW), status="active")
    run = enroll(this, contact, source=MANUAL).run  # before any pause: a live run for the runner's check
    now = timezone.now()
    rows, expected = PAUSE_CASES[case]
    for row in rows:
        scope = {"this": this, "other": other, "all": None}[row["scope"]]
        until = None if row["minutes"] is None else now + timedelta(minutes=row["minutes"])
        ContactAutomationControl.objects.create(organization=org, contact=contact, automation=scope,
                                                paused_until=until, pause_reason=case)

    standing = enrollment_store.standing(this.pk, contact.pk, now, since=now)
    pause = enrollment_store.active_pause(contact.pk, this.pk, now)
    parked = LiveDriver(run, Effects(run=run, contact=contact, automation=this)).paused(now)
    result = enroll(this, contact, source=TRIGGER, now=now)

    if expected is None:
        assert (standing.pause_id, pause, parked) == (None, None, None)
        assert result.blocked != "contact_paused"  # (re-entry refuses it: the manual run is live)
        return
    assert standing.pause_id == pause.id == parked.control_id  # the same row, by the same rule
    assert standing.pause_global is (expected == "global") is (pause.automation_id is None)
    assert parked.automation_id == pause.automation_id
    assert (result.blocked, result.pause_global) == ("contact_paused", expected == "global")


def test_the_pause_fragment_is_in_both_statements():
    assert enrollment_store.PAUSE_APPLIES in enrollment_store.STANDING
    assert enrollment_store.PAUSE_APPLIES in enrollment_store.PAUSES
    assert importlib.util.find_spec("automations.runtime.pauses") is None


@pytest.mark.parametrize(("prior", "allow", "cooldown", "blocked"), [
    (PriorRuns(live=True, any=True, recently_completed=False), True, 0, True),
    (PriorRuns(live=False, any=True, recently_completed=False), False, 60, True),
    (PriorRuns(live=False, any=False, recently_completed=False), False, 60, False),
    (PriorRuns(live=False, any=True, recently_completed=True), True, 60, True),
    (PriorRuns(live=False, any=True, recently_completed=True), True, 0, False),
    (PriorRuns(live=False, any=True, recently_completed=False), True, 60, False),
])
def test_reentry_is_decided_from_the_prior_runs_the_standing_read(prior, allow, cooldown, blocked):
    binding = type("Binding", (), {"config": {"allow_reentry": allow, "reentry_cooldown_min": cooldown}})()
    assert reentry_blocked(prior, binding=binding) is blocked


@pytest.mark.django_db
def test_the_standing_reads_prior_runs_by_name(org, contact, monkeypatch):
    monkeypatch.setattr("automations.runtime.enrollment.enqueue_advance", lambda run_id: None)
    automation = factories.automation(org, factories.flow(ACTIVE_FLOW), status="active")
    now = timezone.now()
    assert enrollment_store.standing(automation.pk, contact.pk, now, since=now) == enrollment_store.Standing(
        status="active", root_node_key="hi", pause_id=None, pause_global=False, paused_until=None,
        prior=PriorRuns(live=False, any=False, recently_completed=False))
    enroll(automation, contact)
    assert enrollment_store.standing(automation.pk, contact.pk, now, since=now).prior == PriorRuns(
        live=True, any=True, recently_completed=False)
    assert enrollment_store.standing("auto_gone", contact.pk, now, since=now).status is None


@pytest.mark.django_db
def test_the_candidate_entrypoints_are_the_situations_in_match_order(org, account, contact):
    live = factories.automation(org, factories.flow(ACTIVE_FLOW), status="active")
    paused = factories.automation(org, factories.flow(ACTIVE_FLOW), status="paused")
    low = factories.entrypoint(live, priority=5)
    high = factories.entrypoint(live, priority=1)
    specific = factories.entrypoint(live, priority=9, specificity=2)
    factories.entrypoint(paused)  # its automation is not active
    factories.entrypoint(live, kind="comment_created")  # another kind
    factories.entrypoint(live, status="inactive")
    conversation = factories.conversation(contact, account)
    message = Message.objects.create(organization=org, conversation=conversation, direction="inbound", text="hi")

    situation = inbound_store.situation(account, contact, message, "dm_received", ["input"])
    assert [e.pk for e in situation.candidates] == [specific.pk, high.pk, low.pk]
    assert all(e.automation.pk == live.pk for e in situation.candidates)  # read with their automation
    assert (situation.first_message, situation.first_on_channel, situation.any_waiting) == (True, True, False)
    assert not hasattr(matcher, "candidate_entrypoints")


@pytest.mark.django_db
def test_internal_events_and_the_situation_rank_entrypoints_by_the_one_match_order(org, account, contact):
    """The same ranking inputs (specificity, priority, age, with ties) give the same order for a channel
    event (the store's SITUATION) and for a contact change (internal events' ORM query)."""
    live = factories.automation(org, factories.flow(ACTIVE_FLOW), status="active")
    start = timezone.now() - timedelta(hours=1)
    shapes = [(0, 5, 0), (2, 9, 1), (0, 1, 2), (0, 5, 3), (2, 9, 0), (1, 100, 4)]  # (specificity, priority, age)
    ranked = {}
    for kind in ("dm_received", "tag_applied"):
        created = [factories.entrypoint(live, kind=kind, specificity=specificity, priority=priority,
                                        created_at=start - timedelta(minutes=age))
                   for specificity, priority, age in shapes]
        ranked[kind] = created
    conversation = factories.conversation(contact, account)
    message = Message.objects.create(organization=org, conversation=conversation, direction="inbound", text="hi")
    by_situation = [e.pk for e in inbound_store.situation(account, contact, message, "dm_received", []).candidates]
    by_internal_events = [e.pk for e in internal_events._candidates(org.pk, [("tag_applied", {"tag": "x"})])]

    def shape_order(kind, pks):
        return [[e.pk for e in ranked[kind]].index(pk) for pk in pks]

    assert shape_order("dm_received", by_situation) == shape_order("tag_applied", by_internal_events)
    assert shape_order("dm_received", by_situation)[:3] == [1, 4, 5]  # specificity, then priority, then the oldest


@pytest.mark.parametrize("cls", [enrollment_store.Pause, enrollment_store.Standing, enrollment_store.PriorRuns,
                                 inbound_store.Situation])
def test_rows_are_decoded_into_frozen_dataclasses(cls):
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


@pytest.mark.parametrize("module", [enrollment_store, inbound_store])
def test_every_statement_is_a_named_constant_with_named_parameters(module):
    statements = {name: text for name, text in vars(module).items()
                  if name.lstrip("_").isupper() and isinstance(text, str) and not name.endswith(("PREFIX", "TEMPLATE"))}
    assert statements
    for name, text in statements.items():
        assert not re.search(r"%s", text), name
        assert "{" not in text.replace("'{}'", ""), name  # every identifier placeholder filled
