"""Platform webhooks in: Telegram updates and Meta (Messenger, Instagram, WhatsApp) deliveries.

`deliveries` stores each verified POST as it arrived and processes it on a worker; one parser module per
platform turns a delivery into `normalized` items — events for the same pipeline `POST /v1/inbound-events`
runs, and delivery statuses for outbound messages (`statuses`)."""
