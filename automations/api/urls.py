"""Automations API routes, assembled from one module per area."""

from automations.api import graph_urls, inbound_urls, insights_urls, platform_webhook_urls, run_urls

urlpatterns = [*insights_urls.urlpatterns, *graph_urls.urlpatterns, *run_urls.urlpatterns, *inbound_urls.urlpatterns,
               *platform_webhook_urls.urlpatterns]
