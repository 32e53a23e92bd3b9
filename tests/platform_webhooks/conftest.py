import pytest
from cryptography.fernet import Fernet

from contacts.models import Channel
from tests import factories
from tests.platform_webhooks.payloads import APP_SECRET, TELEGRAM_SECRET, VERIFY_TOKEN

ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def meta_settings(settings):
    settings.RELAY_META_APP_SECRET = APP_SECRET
    settings.RELAY_META_VERIFY_TOKEN = VERIFY_TOKEN
    settings.RELAY_ENCRYPTION_KEYS = [ENCRYPTION_KEY]  # Telegram's webhook secret is stored encrypted
    return settings


@pytest.fixture
def tg_account(org):
    """A Telegram bot account (sandbox delivery: the run's sends are recorded, not sent)."""
    account = factories.social_account(org, channel=Channel.TELEGRAM, external_id="123456789")
    account.set_credentials({"bot_token": "123456789:AAtest", "webhook_secret": TELEGRAM_SECRET})
    account.save()
    return account


@pytest.fixture
def wa_account(org):
    return factories.social_account(org, channel=Channel.WHATSAPP, external_id="106540352242922")


@pytest.fixture
def fb_account(org):
    return factories.social_account(org, channel=Channel.FACEBOOK, external_id="PAGE-1")


@pytest.fixture
def ig_account(org):
    return factories.social_account(org, channel=Channel.INSTAGRAM, external_id="IG-1")
