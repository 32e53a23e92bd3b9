"""Contact, social-account, conversation and message bodies; contact writes go through contacts.actions."""

from rest_framework import serializers

from contacts import actions
from contacts.models import (
    AccountStatus,
    Channel,
    Contact,
    Conversation,
    Message,
    Provider,
    SocialAccount,
)
from relay.core.errors import ApiError
from relay.core.serializers import OrgRelatedField, StrictModelSerializer, StrictSerializer, save_changes

CREDENTIAL_KEYS = {Provider.SANDBOX: (), Provider.TELEGRAM: ("bot_token",), Provider.WHATSAPP: ("access_token",),
                   Provider.MESSENGER: ("access_token",), Provider.INSTAGRAM: ("access_token",)}


class SocialAccountSerializer(StrictModelSerializer):
    """`credentials` is write-only: stored encrypted, never returned (`has_credentials` says whether
    there are any). New credentials or a new provider make the account `unverified` until verified."""

    channel = serializers.ChoiceField(choices=Channel.choices)
    provider = serializers.ChoiceField(choices=Provider.choices, default=Provider.SANDBOX)
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=2000), write_only=True, required=False,
        help_text="Telegram: {bot_token}. WhatsApp: {access_token} (external_id = phone number id). "
                  "Messenger: {access_token} (page token; external_id = page id). Instagram: {access_token} "
                  "(external_id = IG user id). Write-only.")
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = SocialAccount
        fields = ["id", "channel", "name", "external_id", "provider", "credentials", "has_credentials", "status",
                  "display_name", "last_error", "last_error_at", "created_at", "updated_at"]
        read_only_fields = ["id", "status", "display_name", "last_error", "last_error_at", "created_at",
                            "updated_at"]

    def get_has_credentials(self, obj) -> bool:
        return bool(obj.credentials_encrypted)

    def validate(self, attrs):
        organization = self.context["request"].organization
        channel = attrs.get("channel", getattr(self.instance, "channel", None))
        external_id = attrs.get("external_id", getattr(self.instance, "external_id", None))
        clash = SocialAccount.objects.filter(organization=organization, channel=channel, external_id=external_id)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ApiError("social_account_exists", "A social account with this channel and external_id exists.",
                           status=409, details={"external_id": ["already connected"]})
        provider = attrs.get("provider", getattr(self.instance, "provider", Provider.SANDBOX))
        credentials = attrs.get("credentials")
        expected = CREDENTIAL_KEYS[provider]
        provider_changed = self.instance is not None and "provider" in attrs and provider != self.instance.provider
        if credentials is None and expected and (self.instance is None or provider_changed):
            raise ApiError("validation_error", f"A {provider} account needs credentials.",
                           details={"credentials": [f"required: {', '.join(expected)}"]})
        if credentials is not None:
            missing = [key for key in expected if not credentials.get(key)]
            unknown = sorted(set(credentials) - set(expected))
            if missing or unknown:
                raise ApiError("validation_error",
                               f"{provider} credentials hold exactly: {', '.join(expected) or 'nothing'}.",
                               details={"credentials": [f"missing: {k}" for k in missing]
                                        + [f"unknown: {k}" for k in unknown]})
        return attrs

    def create(self, validated_data):
        credentials = validated_data.pop("credentials", None)
        account = SocialAccount(**validated_data)
        if credentials:
            account.set_credentials(credentials)
        account.save()
        return account

    def update(self, instance, validated_data):
        """`instance` is the view's locked row; new credentials replace the old ones (a Telegram
        webhook secret too: verify sets a new one)."""
        credentials = validated_data.pop("credentials", None)
        also = []
        if credentials is not None or validated_data.get("provider", instance.provider) != instance.provider:
            instance.set_credentials(credentials or {})
            validated_data["status"] = AccountStatus.UNVERIFIED
            also.append("credentials_encrypted")
        return save_changes(instance, validated_data, also=also)


class IdentitySerializer(StrictSerializer):
    social_account_id = OrgRelatedField(model=SocialAccount, source="social_account")
    platform_user_id = serializers.CharField(max_length=200)

    def validate(self, attrs):
        """Both keys, also in a PATCH (DRF's partial update would otherwise skip them in list items)."""
        missing = {name: ["This field is required."] for name, key in
                   (("social_account_id", "social_account"), ("platform_user_id", "platform_user_id"))
                   if key not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ContactSerializer(StrictModelSerializer):
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    custom_fields = serializers.DictField(required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    identities = IdentitySerializer(many=True, required=False)

    class Meta:
        model = Contact
        fields = ["id", "name", "email", "phone", "tags", "custom_fields", "identities", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_tags(self, tags):
        return list(dict.fromkeys(t.strip() for t in tags if t.strip()))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["identities"] = [
            {"social_account_id": i.social_account_id, "platform_user_id": i.platform_user_id}
            for i in instance.identities.all()
        ]
        return data

    def create(self, validated_data):
        identities = validated_data.pop("identities", [])
        return actions.create_contact(self.context["request"].organization.pk, identities=identities,
                                      **validated_data)

    def update(self, instance, validated_data):
        identities = validated_data.pop("identities", None)
        return actions.update_contact(instance, validated_data, identities)  # `instance`: the view's locked row


class ConversationSerializer(serializers.ModelSerializer):
    contact_id = serializers.CharField(read_only=True)
    social_account_id = serializers.CharField(read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "contact_id", "social_account_id", "created_at", "last_inbound_at"]


class MessageSerializer(serializers.ModelSerializer):
    conversation_id = serializers.CharField(read_only=True)
    run_id = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "conversation_id", "direction", "text", "payload", "status", "run_id", "node_key",
                  "provider_message_id", "error_code", "error", "created_at", "sent_at"]

    def get_run_id(self, obj) -> str | None:
        return obj.run_id or None
