"""Checking an account's credentials with its platform (`POST /v1/social-accounts/{id}/verify`):
Telegram getMe + setWebhook (a new `secret_token`, kept as `credentials["webhook_secret"]`), Graph
`GET /<id>`. A rejected token leaves the account `needs_reauth` with the platform's words in
`last_error`; success makes it `connected` under the platform's display name."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from automations.channels.errors import ChannelError, ErrorClass
from automations.channels.registry import get_provider
from contacts.models import AccountStatus, SocialAccount


def verify_account(account: SocialAccount) -> SocialAccount:
    """Ask the platform; store the outcome on the account (under a row lock; credentials PATCHed
    meanwhile are neither overwritten nor marked connected). Raises ChannelError for anything but a
    rejected token (platform unreachable, webhook refused): the account is then left as it was,
    apart from `last_error`."""
    provider = get_provider(account.provider)
    try:
        found = provider.verify(account)
    except ChannelError as exc:
        with transaction.atomic():
            row = SocialAccount.objects.select_for_update().get(pk=account.pk)
            row.last_error, row.last_error_at = f"verify: {exc}"[:1000], timezone.now()
            fields = ["last_error", "last_error_at", "updated_at"]
            if exc.error_class == ErrorClass.NEEDS_REAUTH:
                row.status = AccountStatus.NEEDS_REAUTH
                fields.append("status")
            row.save(update_fields=fields)
        if exc.error_class == ErrorClass.NEEDS_REAUTH:
            return row
        raise
    with transaction.atomic():
        row = SocialAccount.objects.select_for_update().get(pk=account.pk)
        if row.credentials_encrypted != account.credentials_encrypted:
            return row  # new credentials arrived meanwhile: what was checked is not what is stored
        row.status, row.display_name = AccountStatus.CONNECTED, (found.get("display_name") or "")[:200]
        row.last_error, row.last_error_at = "", None
        fields = ["status", "display_name", "last_error", "last_error_at", "updated_at"]
        if found.get("credentials"):
            row.set_credentials({**row.credentials, **found["credentials"]})
            fields.append("credentials_encrypted")
        platform_id = found.get("platform_id")
        if platform_id and row.external_id != platform_id and not SocialAccount.objects.filter(
                organization_id=row.organization_id, channel=row.channel, external_id=platform_id).exists():
            row.external_id = platform_id  # Telegram: the bot's id, which its updates are routed by
            fields.append("external_id")
        row.save(update_fields=fields)
    return row
