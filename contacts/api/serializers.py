"""Contact, social-account, conversation and message bodies; contact writes send contact_changed."""

from django.db import transaction
from rest_framework import serializers

from contacts.models import Channel, Contact, ContactIdentity, Conversation, Message, Provider, SocialAccount
from contacts.signals import diff_contact, send_contact_changed_on_commit
from relay.core.errors import ApiError
from relay.core.serializers import OrgRelatedField, StrictModelSerializer, StrictSerializer, save_changes


class SocialAccountSerializer(StrictModelSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    provider = serializers.ChoiceField(choices=Provider.choices, default=Provider.SANDBOX)

    class Meta:
        model = SocialAccount
        fields = ["id", "channel", "name", "external_id", "provider", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

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
        return attrs


class IdentitySerializer(StrictSerializer):
    social_account_id = OrgRelatedField(model=SocialAccount, source="social_account")
    platform_user_id = serializers.CharField(max_length=200)


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

    @transaction.atomic
    def create(self, validated_data):
        identities = validated_data.pop("identities", [])
        contact = Contact.objects.create(organization=self.context["request"].organization, **validated_data)
        self._replace_identities(contact, identities)
        send_contact_changed_on_commit(contact, diff_contact([], {}, contact))
        return contact

    @transaction.atomic
    def update(self, instance, validated_data):
        identities = validated_data.pop("identities", None)
        before_tags, before_fields = list(instance.tags or []), dict(instance.custom_fields or {})
        save_changes(instance, validated_data)  # `instance` is the view's locked row
        if identities is not None:
            self._replace_identities(instance, identities)
        send_contact_changed_on_commit(instance, diff_contact(before_tags, before_fields, instance))
        return instance

    def _replace_identities(self, contact, identities):
        contact.identities.all().delete()
        for identity in identities:
            taken = ContactIdentity.objects.filter(
                social_account=identity["social_account"], platform_user_id=identity["platform_user_id"]
            ).exists()
            if taken:
                raise ApiError("identity_taken", "That platform_user_id already belongs to another contact.",
                               status=409, details={"identities": [identity["platform_user_id"]]})
            ContactIdentity.objects.create(contact=contact, **identity)


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
                  "provider_message_id", "error", "created_at", "sent_at"]

    def get_run_id(self, obj) -> str | None:
        return obj.run_id or None
