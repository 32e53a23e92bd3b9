"""Step runs are append-only: the model refuses updates and deletes, and so does the database."""

import pytest
from django.db import DatabaseError, connection, transaction

from automations.models import AppendOnlyError, StepRun
from tests import factories


@pytest.fixture
def step(db):
    return StepRun.objects.create(run_id="arun_x", automation_id="auto_x", node_key="greet", node_kind="message",
                                  outcome="success", payload={"a": 1})


def test_a_new_step_gets_an_integer_id(step):
    assert isinstance(step.pk, int)
    assert StepRun.objects.get(pk=step.pk).payload == {"a": 1}


def test_the_model_refuses_updates_and_deletes(step):
    step.outcome = "failed"
    with pytest.raises(AppendOnlyError):
        step.save()
    with pytest.raises(AppendOnlyError):
        step.delete()
    with pytest.raises(AppendOnlyError):
        StepRun.objects.filter(pk=step.pk).update(outcome="failed")
    with pytest.raises(AppendOnlyError):
        StepRun.objects.filter(pk=step.pk).delete()
    assert StepRun.objects.get(pk=step.pk).outcome == "success"


@pytest.mark.parametrize("sql", ["UPDATE automation_step_runs SET outcome = 'failed' WHERE id = %s",
                                 "DELETE FROM automation_step_runs WHERE id = %s"])
def test_the_database_trigger_refuses_updates_and_deletes(step, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [step.pk])
    assert StepRun.objects.get(pk=step.pk).outcome == "success"


def test_the_step_admin_is_read_only(admin_client, step):
    assert admin_client.get(factories.admin_url(step)).status_code == 200
    assert admin_client.get("/admin/automations/steprun/add/").status_code == 403
    assert admin_client.get(factories.admin_url(step, "delete")).status_code == 403
    response = admin_client.post(factories.admin_url(step), {"outcome": "failed"})
    assert response.status_code == 403
    assert StepRun.objects.get(pk=step.pk).outcome == "success"
