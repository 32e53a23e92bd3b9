"""Errors to Sentry when SENTRY_DSN is set: unhandled exceptions in requests and Celery tasks, and ERROR
log lines (the JSON-error middleware logs the crashes it turns into a 500). No personal data: no
cookies, user ids, IP addresses or request bodies (send_default_pii off)."""

from __future__ import annotations


def init_sentry(dsn: str, *, environment: str | None = None, release: str | None = None,
                traces_sample_rate: float = 0.0) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
    )
