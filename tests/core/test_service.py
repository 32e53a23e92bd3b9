import io

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from relay.core.models import Organization

pytestmark = pytest.mark.django_db


def test_healthz_checks_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_openapi_schema_is_served_without_a_key():
    response = Client().get("/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/v1/contacts" in schema["paths"]


def test_create_api_key_command_prints_a_working_key_on_the_last_line():
    out = io.StringIO()
    call_command("create_api_key", "--org", "Acme", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert Organization.objects.filter(name="Acme").count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/v1/contacts").status_code == 200

    call_command("create_api_key", "--org", "Acme", stdout=io.StringIO())
    assert Organization.objects.filter(name="Acme").count() == 1


def test_bootstrap_demo_prints_a_stable_working_key_admin_login_and_beat_schedule(settings, tmp_path):
    from django.contrib.auth import get_user_model
    from django_celery_beat.models import PeriodicTask

    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()
    call_command("bootstrap_demo", stdout=first, stderr=io.StringIO())
    call_command("bootstrap_demo", stdout=second, stderr=io.StringIO())
    key = next(line.split(":", 1)[1].strip() for line in first.getvalue().splitlines() if "API key" in line)
    assert key in second.getvalue()  # the same key on every `up`
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/v1/social-accounts").json()["data"][0]["channel"] == "instagram"
    password = (tmp_path / "admin_password").read_text().strip()
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert PeriodicTask.objects.filter(task="automations.tasks.scheduler_tick", enabled=True).count() == 1
