from django.urls import path

from automations.api import platform_webhooks

urlpatterns = [
    path("platform-webhooks/meta", platform_webhooks.MetaWebhookView.as_view()),
    path("platform-webhooks/whatsapp", platform_webhooks.WhatsAppWebhookView.as_view()),
    path("platform-webhooks/telegram/<str:social_account_id>", platform_webhooks.TelegramWebhookView.as_view()),
]
