"""Tenancy: every object belongs to an Organization; API keys are stored only as hashes."""

import hashlib
import secrets

from django.db import models
from django.utils import timezone

from relay.core.ids import PrefixedIdField

API_KEY_PREFIX = "rk_"


def hash_api_key(raw_key: str) -> str:
    # Keys are 40+ random characters, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class Organization(models.Model):
    id = PrefixedIdField("org")
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "organizations"

    def __str__(self):
        return f"{self.name} ({self.id})"


class ApiKeyManager(models.Manager):
    def create_key(self, organization: Organization, name: str = "default") -> tuple["ApiKey", str]:
        """Create a key and return (row, raw key). The raw key is never stored and shown only here."""
        raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = self.create(organization=organization, name=name, prefix=raw[:10], key_hash=hash_api_key(raw))
        return key, raw


class ApiKey(models.Model):
    id = PrefixedIdField("key")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, default="default")
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta:
        db_table = "api_keys"

    def __str__(self):
        return f"{self.prefix}… ({self.name})"
