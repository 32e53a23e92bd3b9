from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from relay.core.views import healthz, no_favicon, prometheus_metrics, readyz


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list = []
    permission_classes: list = []


# The docs pages load everything from this server (drf-spectacular-sidecar under STATIC_URL); the policy
# makes the browser refuse anything else, e.g. the attribution logo Redoc's bundle fetches from its CDN.
DOCS_CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
                                "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


class DocsPageMixin:
    authentication_classes: list = []
    permission_classes: list = []

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class PublicSwaggerView(DocsPageMixin, SpectacularSwaggerView):
    """Swagger UI for /v1/schema, assets from drf-spectacular-sidecar."""


class PublicRedocView(DocsPageMixin, SpectacularRedocView):
    """Redoc for /v1/schema, assets from drf-spectacular-sidecar."""


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
