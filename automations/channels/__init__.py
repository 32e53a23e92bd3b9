"""Delivery to the messaging platforms: one module per provider (`sandbox`, `telegram`, `whatsapp`,
`messenger`, `instagram`) behind the provider interface the runtime uses (`registry.get_provider`),
the shared HTTP session and error classes (`http`, `errors`), Graph code shared by the three Meta
platforms (`graph`), send pacing (`pacing`) and account verification (`verify`).

Inbound webhooks live in `channels.inbound` (parsers and the durable delivery store)."""
