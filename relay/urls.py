from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from relay.core.views import healthz, no_favicon, prometheus_metrics, readyz


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list = []
    permission_classes: list = []


class PublicSwaggerView(SpectacularSwaggerView):
    """Swagger UI for /v1/schema; its assets come from drf-spectacular-sidecar under STATIC_URL."""

    authentication_classes: list = []
    permission_classes: list = []


class PublicRedocView(SpectacularRedocView):
    authentication_classes: list = []
    permission_classes: list = []


urlpatterns = [
    path("", RedirectView.as_view(url="/v1/docs", permanent=False)),
    path("healthz", healthz),
    path("favicon.ico", no_favicon),
    path("readyz", readyz),
    path("metrics", prometheus_metrics),
    path("admin/", admin.site.urls),
    path("v1/schema", PublicSchemaView.as_view(), name="schema"),
    path("v1/docs", PublicSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/redoc", PublicRedocView.as_view(url_name="schema"), name="redoc"),
    path("v1/", include("contacts.api.urls")),
    path("v1/", include("automations.api.urls")),
]

if settings.RELAY_BENCH_ENDPOINTS:  # the benchmark's HTTP ceiling (bench/http_ceiling.py); off by default
    from bench.http_ceiling import CeilingView

    urlpatterns.append(path("bench/ceiling", CeilingView.as_view()))
