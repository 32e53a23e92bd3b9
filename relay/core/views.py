from django.db import connection
from django.http import HttpResponse, JsonResponse


def healthz(request):
    """Liveness + database check for load balancers and `relay up`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def no_favicon(request):
    """Browsers ask every site for /favicon.ico; we have none. An empty answer instead of a 404 keeps the
    admin's console free of errors."""
    return HttpResponse(status=204)
