"""Secrets at rest (channel credentials): Fernet tokens under a MultiFernet built from
RELAY_ENCRYPTION_KEYS. The first key encrypts, every key decrypts, so keys rotate by putting a new key
first and re-saving (`rotate`). Without keys, DEBUG derives one from SECRET_KEY so a laptop works;
production refuses to store or read a secret until keys are set."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored token decrypts with none of the configured keys (a key was dropped too early)."""


def _keys() -> list[bytes]:
    configured = [k.strip() for k in settings.RELAY_ENCRYPTION_KEYS if k.strip()]
    if configured:
        return [k.encode() for k in configured]
    if settings.DEBUG:
        return [base64.urlsafe_b64encode(hashlib.sha256(f"relay-dev:{settings.SECRET_KEY}".encode()).digest())]
    raise ImproperlyConfigured("RELAY_ENCRYPTION_KEYS must be set to store channel credentials")


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt_json(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise SecretUnreadable("stored credentials cannot be decrypted with RELAY_ENCRYPTION_KEYS")


def rotate(token: str) -> str:
    """The same secret under the current first key."""
    return _fernet().rotate(token.encode()).decode() if token else token
