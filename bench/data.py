"""Benchmark data: the graphs measured and bulk builders for contacts, runs and due jobs.

Setup is never timed, so it uses bulk INSERTs; the rows have exactly the shape the runtime writes
(an enrolled `active` run at the root; a run parked at a delay with its `resume_delay` job), so what
is timed afterwards is the real runtime path."""

from __future__ import annotations

import itertools
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from automations.graph.service import activate, save_graph
from automations.models import Automation, AutomationRun, JobKind, RunStatus, ScheduledJob, WaitingFor
from contacts.models import Contact, ContactIdentity, Conversation, SocialAccount
from relay.core.models import ApiKey, Organization

_seq = itertools.count(1)


def node(key, kind, **config):
    return {"key": key, "kind": kind, "config": config}


def edge(from_node, port, to_node):
    return {"from_node": from_node, "from_port": port, "to_node": to_node, "to_port": "in"}


def text(value):
    return {"blocks": [{"type": "text", "text": value}]}


def has_tag(tag):
    return {"all": [{"field": "tags", "op": "contains", "value": tag}]}


def runner_graph() -> dict:
    """Ten nodes, no waits: two messages, three action groups, four conditions, an end."""
    nodes = [
        node("greet", "message", **text("Hi {{contact.name}}, thanks for writing!")),
        node("tag", "action_group", actions=[{"id": "a1", "type": "tag_add", "tag": "bench"}]),
        node("tagged", "condition", predicates=has_tag("bench")),
        node("score", "action_group", actions=[{"id": "a2", "type": "field_set", "field": "score", "value": 1}]),
        node("scored", "condition", predicates={"all": [{"field": "fields.score", "op": "gte", "value": 1}]}),
        node("vip", "condition", predicates=has_tag("vip")),
        node("note", "action_group", actions=[{"id": "a3", "type": "field_set", "field": "stage", "value": "warm"}]),
        node("warm", "condition", predicates={"all": [{"field": "fields.stage", "op": "eq", "value": "warm"}]}),
        node("follow", "message", **text("Your score is {{fields.score}}.")),
        node("done", "end", reason="bench_done"),
    ]
    edges = [edge("greet", "next", "tag"), edge("tag", "next", "tagged"), edge("tagged", "true", "score"),
             edge("score", "next", "scored"), edge("scored", "true", "vip"), edge("vip", "false", "note"),
             edge("note", "next", "warm"), edge("warm", "true", "follow"), edge("follow", "next", "done")]
    return {"nodes": nodes, "edges": edges, "root_node_key": "greet"}


RUNNER_GRAPH_NODES = 10


def inbound_graph() -> dict:
    """The keyword entrypoint's automation: message → tag → end."""
    return {"nodes": [node("greet", "message", **text("Hello {{contact.name}}!")),
                      node("tag", "action_group", actions=[{"id": "a1", "type": "tag_add", "tag": "lead"}]),
                      node("done", "end", reason="answered")],
            "edges": [edge("greet", "next", "tag"), edge("tag", "next", "done")],
            "root_node_key": "greet"}


def delay_graph() -> dict:
    """A follow-up after a delay: check → delay → message → end (the runs measured are parked at `wait`)."""
    return {"nodes": [node("start", "condition", predicates={}), node("wait", "delay", seconds=3600),
                      node("follow", "message", **text("Still there?")), node("done", "end", reason="followed_up")],
            "edges": [edge("start", "true", "wait"), edge("wait", "next", "follow"), edge("follow", "next", "done")],
            "root_node_key": "start"}


class World:
    """One organization with a sandbox account and an API key."""

    def __init__(self, name: str = "bench"):
        self.org = Organization.objects.create(name=name)
        self.account = SocialAccount.objects.create(organization=self.org, channel="instagram", name="Bench",
                                                    external_id="bench-account")
        _, self.api_key = ApiKey.objects.create_key(self.org, "bench")

    def automation(self, name: str, graph: dict) -> Automation:
        """An active automation with `graph`, validated and activated like the API does."""
        automation = Automation.objects.create(organization=self.org, name=name, channel="instagram",
                                               status="draft")
        with transaction.atomic():
            save_graph(automation, graph)
        if automation.graph_errors:
            raise RuntimeError(f"bench graph {name!r} is invalid: {automation.graph_errors}")
        return activate(automation)

    def contacts(self, count: int) -> list[tuple[Contact, Conversation]]:
        """`count` contacts, each with an identity and a conversation on the account."""
        batch = next(_seq)
        contacts = Contact.objects.bulk_create(
            [Contact(organization=self.org, name=f"Contact {batch}-{i}") for i in range(count)], batch_size=2000)
        ContactIdentity.objects.bulk_create(
            [ContactIdentity(contact=c, social_account=self.account, platform_user_id=f"psid-{batch}-{i}")
             for i, c in enumerate(contacts)], batch_size=2000)
        conversations = Conversation.objects.bulk_create(
            [Conversation(organization=self.org, contact=c, social_account=self.account) for c in contacts],
            batch_size=2000)
        return list(zip(contacts, conversations, strict=True))

    def _run(self, automation, contact, conversation, now, **fields) -> AutomationRun:
        return AutomationRun(organization=self.org, automation=automation, contact=contact,
                             conversation=conversation, social_account=self.account, context={},
                             started_at=now, updated_at=now, **fields)

    def settle(self) -> None:
        """VACUUM ANALYZE what setup just bulk-inserted, so autovacuum does not wake up during the timed part
        (on two cores it competes with the runtime and moved the runner's figure by a third) and the
        planner has statistics, as a production database would."""
        tables = [model._meta.db_table for model in (Contact, ContactIdentity, Conversation, AutomationRun,
                                                     ScheduledJob)]
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")

    def active_runs(self, automation: Automation, count: int) -> list[str]:
        """Enrolled runs waiting for their first advance (as enrollment leaves them); returns ids."""
        now = timezone.now()
        runs = [self._run(automation, contact, conversation, now, status=RunStatus.ACTIVE,
                          current_node_key=automation.graph["root_node_key"])
                for contact, conversation in self.contacts(count)]
        AutomationRun.objects.bulk_create(runs, batch_size=2000)
        return [run.pk for run in runs]

    def delayed_runs(self, automation: Automation, count: int, due_at: datetime) -> list[str]:
        """Runs parked at the `wait` delay with a pending `resume_delay` job due at `due_at`."""
        now = timezone.now()
        runs = [self._run(automation, contact, conversation, now, status=RunStatus.WAITING,
                          waiting_for=WaitingFor.DELAY, waiting_until=due_at, current_node_key="wait")
                for contact, conversation in self.contacts(count)]
        AutomationRun.objects.bulk_create(runs, batch_size=2000)
        ScheduledJob.objects.bulk_create(
            [ScheduledJob(organization=self.org, run=run, kind=JobKind.RESUME_DELAY, due_at=due_at,
                          payload={"node_key": "wait", "port_key": "next"}) for run in runs], batch_size=2000)
        return [run.pk for run in runs]
