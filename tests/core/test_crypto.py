"""Channel credentials are stored encrypted; keys rotate (first encrypts, all decrypt)."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from contacts.models import SocialAccount
from relay.core.crypto import SecretUnreadable, rotate
from tests import factories


@pytest.mark.django_db
def test_credentials_are_encrypted_in_the_raw_column(settings):
    settings.RELAY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    account = factories.social_account(factories.organization())
    account.set_credentials({"bot_token": "123456:SECRET-bot-token"})
    account.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM social_accounts WHERE id = %s", [account.pk])
        raw = cursor.fetchone()[0]
    assert raw and "SECRET-bot-token" not in raw and "bot_token" not in raw
    assert SocialAccount.objects.get(pk=account.pk).credentials == {"bot_token": "123456:SECRET-bot-token"}


@pytest.mark.django_db
def test_keys_rotate_first_encrypts_all_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RELAY_ENCRYPTION_KEYS = [old]
    account = factories.social_account(factories.organization())
    account.set_credentials({"access_token": "EAAB-token"})
    account.save()
    settings.RELAY_ENCRYPTION_KEYS = [new, old]
    account.refresh_from_db()
    assert account.credentials == {"access_token": "EAAB-token"}
    account.credentials_encrypted = rotate(account.credentials_encrypted)
    account.save()
    settings.RELAY_ENCRYPTION_KEYS = [new]
    account.refresh_from_db()
    assert account.credentials == {"access_token": "EAAB-token"}
    settings.RELAY_ENCRYPTION_KEYS = [old]
    with pytest.raises(SecretUnreadable):
        account.credentials  # noqa: B018 - reading decrypts


def test_production_without_keys_refuses_to_store(settings):
    settings.RELAY_ENCRYPTION_KEYS, settings.DEBUG = [], False
    with pytest.raises(ImproperlyConfigured):
        SocialAccount().set_credentials({"bot_token": "x"})
