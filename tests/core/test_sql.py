"""The runtime's hand-written SQL stores exactly what the ORM would, and ids stay uniform."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import connection

from automations.models import StepRun
from automations.runtime.hooks import Rows, WritePhase, apply_alone
from automations.store.base import instance, json_records
from automations.store.steps import INSERT_STEPS
from relay.core.ids import _ALPHABET, ID_RANDOM_LENGTH, new_id
from tests import factories

pytestmark = pytest.mark.django_db


def test_insert_rows_round_trips_json_nulls_and_microseconds(org):
    automation = factories.automation(org, factories.flow([("a", "end", {})]))
    executed_at = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)
    payload = {"text": "it's \"quoted\" \\ and ünïcode", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    columns = ("run_id", "automation_id", "node_key", "node_kind", "entered_via_port_key", "exited_via_port_key",
               "outcome", "duration_ms", "payload", "error", "executed_at")
    rows = [("arun_x", automation.pk, "a", "end", None, "next", "success", 7, payload, None, executed_at),
            ("arun_x", automation.pk, "b", "end", "in", None, "failed", 0, {}, {"code": "boom"}, executed_at)]
    apply_alone([Rows(WritePhase.STEPS, INSERT_STEPS, {"rows": json_records(StepRun, columns, rows)})])
    first, second = StepRun.objects.filter(run_id="arun_x").order_by("node_key")
    assert (first.payload, first.error, first.executed_at, first.duration_ms) == (payload, None, executed_at, 7)
    assert (first.entered_via_port_key, first.exited_via_port_key) == (None, "next")
    assert (second.payload, second.error) == ({}, {"code": "boom"})
    with connection.cursor() as cursor:  # None in a JSON column is SQL NULL, as the ORM stores it
        cursor.execute("SELECT count(*) FROM automation_step_runs WHERE run_id = 'arun_x' AND error IS NULL")
        assert cursor.fetchone()[0] == 1


def test_instance_applies_field_converters_and_reads_an_absent_join_as_none(org):
    automation = factories.automation(org, factories.flow([("a", "end", {})]))
    fields = [f'"{field.column}"' for field in type(automation)._meta.concrete_fields]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {", ".join(fields)} FROM automations WHERE id = %s', [automation.pk])
        loaded = instance(type(automation), list(cursor.fetchone()))
    assert loaded.pk == automation.pk and loaded.graph == automation.graph and isinstance(loaded.graph, dict)
    assert instance(type(automation), [None] * len(fields)) is None


def test_new_ids_are_prefixed_and_use_the_whole_alphabet_evenly():
    ids = [new_id("x") for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("x_") and len(i) == 2 + ID_RANDOM_LENGTH for i in ids)
    counts = Counter("".join(i[2:] for i in ids))
    assert set(counts) == set(_ALPHABET)
    # ~11,111 each (σ ≈ 1 %); `byte % 36` without rejection would give the first four letters 12.5 % more.
    expected = 20000 * ID_RANDOM_LENGTH / len(_ALPHABET)
    assert all(0.94 * expected < n < 1.06 * expected for n in counts.values()), counts


def test_the_hand_written_inserts_name_every_column_the_orm_would_insert():
    """A field added to StepRun or Message must be added to the runtime's column lists too (else its
    Python-side default would never reach the row)."""
    from automations.store.messages import MESSAGE_COLUMNS
    from automations.store.steps import STEP_COLUMNS
    from contacts.models import Message

    for model, columns in ((StepRun, STEP_COLUMNS), (Message, MESSAGE_COLUMNS)):
        inserted = {field.attname for field in model._meta.concrete_fields
                    if not (field.primary_key and field.get_internal_type() == "BigAutoField")}
        assert set(columns) == inserted, model
