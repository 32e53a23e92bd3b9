"""Production settings (DEBUG off) pass `manage.py check --deploy` without warnings, and the HTTPS redirect
spares the probes and the scraper, which speak plain HTTP."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from relay.database import database_url

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SECURE_", "SENTRY_")) and k not in {"DEBUG", "ALLOWED_HOSTS", "LOG_LEVEL"}}
    env.update({"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "DATABASE_URL": database_url(),
                "ALLOWED_HOSTS": "relay.example.com", "DJANGO_SETTINGS_MODULE": "relay.settings", **extra})
    return env


def manage(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=production_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_without_warnings_under_production_settings():
    assert "security" in manage("check", "--deploy", "--list-tags").stdout.split()
    # Every check, drf-spectacular's schema check included (the schema generates without warnings).
    done = manage("check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


def test_probes_and_the_scraper_are_not_redirected_to_https_but_everything_else_is():
    code = ("import django; django.setup()\n"
            "from django.test import Client\n"
            "client = Client(HTTP_HOST='relay.example.com')\n"
            "for path in ('/healthz', '/readyz', '/metrics', '/v1/automations', '/admin/'):\n"
            "    print(path, client.get(path).status_code)\n"
            "print('proxied', client.get('/v1/automations', HTTP_X_FORWARDED_PROTO='https').status_code)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=production_env(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", LOG_LEVEL="CRITICAL"))
    assert done.returncode == 0, done.stderr
    status = dict(line.split() for line in done.stdout.splitlines())
    assert status["/healthz"] == "200" and status["/v1/automations"] == "301" and status["/admin/"] == "301"
    assert status["/readyz"] in {"200", "503"} and status["/metrics"] in {"200", "403"}  # answered, not redirected
    assert status["proxied"] == "401"  # HTTPS per the proxy's header: the API answers (no key given)
