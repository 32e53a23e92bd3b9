"""Who we talk to: social accounts, contacts and their channel identities, conversations, messages,
and the pause rows (`automation_contact_controls`) that keep automations away from a contact."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from relay.core.ids import PrefixedIdField
from relay.core.models import Organization


class Channel(models.TextChoices):
    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"


class Provider(models.TextChoices):
    SANDBOX = "sandbox"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"


class AccountStatus(models.TextChoices):
    """Whether the account's credentials were checked with its platform (`POST …/verify`)."""

    UNVERIFIED = "unverified"
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"


class SocialAccount(models.Model):
    """A connected page/number/bot. `provider` selects the delivery implementation."""

    id = PrefixedIdField("acc")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="social_accounts")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.SANDBOX)
    # Platform secrets (bot token, page/WhatsApp access token, Telegram webhook secret) as one encrypted
    # JSON object: see relay.core.crypto. Never returned by the API, shown in the admin or logged.
    credentials_encrypted = models.TextField(blank=True, default="")
    status = models.CharField(max_length=20, choices=AccountStatus.choices, default=AccountStatus.UNVERIFIED)
    display_name = models.CharField(max_length=200, blank=True, default="", help_text="As the platform names it.")
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "social_accounts"
        constraints = [
            models.UniqueConstraint(fields=["organization", "channel", "external_id"],
                                    name="social_account_unique_external_id"),
        ]

    def __str__(self):
        return f"{self.name} ({self.channel})"

    @property
    def credentials(self) -> dict:
        from relay.core.crypto import decrypt_json

        return decrypt_json(self.credentials_encrypted)

    def set_credentials(self, credentials: dict) -> None:
        from relay.core.crypto import encrypt_json

        self.credentials_encrypted = encrypt_json(credentials) if credentials else ""


class Contact(models.Model):
    id = PrefixedIdField("ct")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "contacts"
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="contact_org_created"),
            models.Index(fields=["organization", "email"], name="contact_org_email"),
            models.Index(fields=["organization", "phone"], name="contact_org_phone"),
        ]

    def __str__(self):
        return self.name or self.email or self.phone or self.id


class ContactIdentity(models.Model):
    """The contact's user id on one social account (what the platform sends us)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    social_account = models.ForeignKey(SocialAccount, on_delete=models.CASCADE, related_name="identities")
    platform_user_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "contact_identities"
        constraints = [
            models.UniqueConstraint(fields=["social_account", "platform_user_id"],
                                    name="identity_unique_per_account"),
        ]

    def __str__(self):
        return f"{self.platform_user_id} on {self.social_account_id}"


class Conversation(models.Model):
    id = PrefixedIdField("cnv")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    social_account = models.ForeignKey(SocialAccount, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "conversations"
        constraints = [
            models.UniqueConstraint(fields=["contact", "social_account"], name="conversation_unique_pair"),
        ]

    def __str__(self):
        return self.id


class MessageDirection(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(models.TextChoices):
    """Outbound messages are an outbox: written `pending` with the step, delivered after commit."""

    RECEIVED = "received"  # inbound
    PENDING = "pending"
    SENT = "sent"  # the platform accepted it (provider_message_id set)
    DELIVERED = "delivered"  # reported by the platform's status webhook
    READ = "read"  # likewise
    FAILED = "failed"  # error_code / error say why
    UNKNOWN = "unknown"  # the request may have gone out (timeout): never resent blindly


class Message(models.Model):
    id = PrefixedIdField("msg")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=10, choices=MessageDirection.choices)
    text = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True, help_text="Buttons, quick replies, attachments, raw event.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    run_id = models.CharField(max_length=40, blank=True, default="", db_index=True)
    node_key = models.CharField(max_length=100, blank=True, default="")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    provider_message_id = models.CharField(max_length=200, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "messages"
        indexes = [
            models.Index(fields=["conversation", "-created_at"], name="message_conv_created"),
            # The outbox sweep (scheduler tick) looks only at outbound rows still pending.
            models.Index(fields=["created_at"], name="message_outbox_pending",
                         condition=models.Q(direction="outbound", status="pending")),
            # Platform status webhooks (delivered / read / failed) name outbound messages by the platform's id.
            models.Index(fields=["provider_message_id"], name="message_provider_id",
                         condition=models.Q(direction="outbound")),
        ]

    def __str__(self):
        return f"{self.direction}: {self.text[:40]}"


class ContactAutomationControl(models.Model):
    """A pause row: automation NULL = every automation. Expired rows (paused_until past) don't apply."""

    id = PrefixedIdField("actl")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="automation_controls")
    automation = models.ForeignKey("automations.Automation", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="contact_controls")
    pause_reason = models.CharField(max_length=200, blank=True, default="")
    paused_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automation_contact_controls"
        constraints = [
            models.UniqueConstraint(fields=["contact", "automation"], name="control_unique_scope"),
            models.UniqueConstraint(fields=["contact"], condition=Q(automation__isnull=True),
                                    name="control_unique_global"),
        ]

    def __str__(self):
        scope = self.automation_id or "all automations"
        return f"pause of {self.contact_id} ({scope})"
