from django.urls import path

from automations.api import inbound

urlpatterns = [
    path("inbound-events", inbound.InboundEventView.as_view()),
    path("webhooks/automations/<str:slug>", inbound.WebhookView.as_view()),
]
