import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from automations.store import health
from relay.core.errors import json_error
from relay.observability import metrics, readiness


def healthz(request):
    """Liveness + database check for load balancers and `relay up`."""
    try:
        health.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def no_favicon(request):
    """Browsers ask every site for /favicon.ico; we have none. An empty answer instead of a 404 keeps the
    admin's console free of errors."""
    return HttpResponse(status=204)


@require_safe
def readyz(request):
    """Readiness: 200 when every check passes, else 503 naming the failing checks (see observability.readiness)."""
    problems = readiness.run_checks()
    failing = [name for name, problem in problems.items() if problem and problem != readiness.NOT_CHECKED]
    checks = {name: problem or "ok" for name, problem in problems.items()}
    if failing:
        return json_error("not_ready", f"Not ready: {', '.join(failing)}.", 503,
                          details={"failing": failing, "checks": checks})
    return JsonResponse({"status": "ok", "checks": checks})


@require_safe
def prometheus_metrics(request):
    """Prometheus scrape. With RELAY_METRICS_TOKEN set: `Authorization: Bearer <token>` required. Without
    it: loopback clients only, and not through a proxy (a local reverse proxy's requests come from
    loopback too, but carry X-Forwarded-For)."""
    token = settings.RELAY_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = json_error("unauthenticated", "Send Authorization: Bearer <RELAY_METRICS_TOKEN>.", 401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _direct_loopback(request):
        return json_error("forbidden", "Metrics are served to loopback clients only unless RELAY_METRICS_TOKEN "
                                       "is set.", 403)
    body = metrics.scrape([metrics.DatabaseCollector(_database_gauges)])
    return HttpResponse(body, content_type=metrics.CONTENT_TYPE)


def _direct_loopback(request) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def _database_gauges():
    from automations.insights.health import scheduler_health

    health = scheduler_health()
    return health["backlog_by_kind"], health["last_tick_at"]
