"""Provider by name (what `SocialAccount.provider` holds) and by automation channel (what the
validator checks a message against)."""

from __future__ import annotations

from automations.channels.errors import DeliveryError
from automations.channels.instagram import InstagramProvider
from automations.channels.messenger import MessengerProvider
from automations.channels.sandbox import SandboxProvider
from automations.channels.telegram import TelegramProvider
from automations.channels.whatsapp import WhatsAppProvider
from contacts.models import Channel, Provider

PROVIDERS = {
    Provider.SANDBOX: SandboxProvider(),
    Provider.TELEGRAM: TelegramProvider(),
    Provider.WHATSAPP: WhatsAppProvider(),
    Provider.MESSENGER: MessengerProvider(),
    Provider.INSTAGRAM: InstagramProvider(),
}
PROVIDER_OF_CHANNEL = {Channel.TELEGRAM: Provider.TELEGRAM, Channel.WHATSAPP: Provider.WHATSAPP,
                       Channel.FACEBOOK: Provider.MESSENGER, Channel.INSTAGRAM: Provider.INSTAGRAM}


def get_provider(name: str):
    try:
        return PROVIDERS[name]
    except KeyError:
        raise DeliveryError("unknown_provider", f"no delivery provider named {name!r}") from None


def capability_problems(channel, config: dict) -> list[str]:
    """Why a message config cannot be sent on `channel` (empty: it can)."""
    provider = PROVIDERS.get(PROVIDER_OF_CHANNEL.get(channel))
    return provider.problems(config) if provider is not None else []
