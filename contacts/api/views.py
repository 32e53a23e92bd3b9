"""Social accounts, contacts (PATCH under a row lock), conversations and their messages."""

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.api.serializers import (
    ContactSerializer,
    ConversationSerializer,
    MessageSerializer,
    SocialAccountSerializer,
)
from contacts.models import Contact, Conversation, SocialAccount
from relay.core.errors import ApiError
from relay.core.openapi import NO_BODY, error_responses, paginated
from relay.core.pagination import paginate
from relay.core.serializers import locked_or_404, org_object_or_404, require_empty_body


class SocialAccountListView(APIView):
    serializer_class = SocialAccountSerializer

    @paginated(SocialAccountSerializer)
    def get(self, request):
        return paginate(request, SocialAccount.objects.filter(organization=request.organization),
                        SocialAccountSerializer)

    @extend_schema(request=SocialAccountSerializer,
                   responses={201: SocialAccountSerializer, **error_responses({409: ["social_account_exists"]})},
                   examples=[OpenApiExample("sandbox", request_only=True, value={
                       "channel": "instagram", "name": "Shop", "external_id": "178414", "provider": "sandbox"})])
    def post(self, request):
        serializer = SocialAccountSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        account = serializer.save(organization=request.organization)
        return Response(SocialAccountSerializer(account).data, status=201)


class SocialAccountDetailView(APIView):
    serializer_class = SocialAccountSerializer

    def get(self, request, pk):
        return Response(SocialAccountSerializer(org_object_or_404(SocialAccount, request.organization, pk)).data)

    @extend_schema(request=SocialAccountSerializer,
                   responses={200: SocialAccountSerializer, **error_responses({409: ["social_account_exists"]})})
    def patch(self, request, pk):
        with transaction.atomic():
            account = locked_or_404(SocialAccount, request.organization, pk)
            serializer = SocialAccountSerializer(account, data=request.data, partial=True,
                                                 context={"request": request})
            serializer.is_valid(raise_exception=True)
            account = serializer.save()
        return Response(SocialAccountSerializer(account).data)


class SocialAccountVerifyView(APIView):
    """Check the account's credentials with its platform; for Telegram also register the webhook."""

    @extend_schema(request=NO_BODY, responses={
                       200: SocialAccountSerializer,
                       **error_responses({422: ["no_credentials", "verification_failed"]})},
                   description="200 with `status` connected or needs_reauth (the platform rejected the token); "
                               "422 `verification_failed` when the platform could not be asked or refused "
                               "something else (`last_error` says what).")
    def post(self, request, pk):
        from automations.channels.errors import ChannelError
        from automations.channels.verify import verify_account

        require_empty_body(request)
        account = org_object_or_404(SocialAccount, request.organization, pk)
        if not account.credentials_encrypted and account.provider != "sandbox":
            raise ApiError("no_credentials", "Set the account's credentials first (PATCH credentials).", status=422)
        try:
            account = verify_account(account)
        except ChannelError as exc:
            raise ApiError("verification_failed", f"The platform did not confirm the account: {exc}", status=422,
                           details={"platform_code": exc.code, "error_class": str(exc.error_class)}) from None
        return Response(SocialAccountSerializer(account).data)


def _contacts(organization):
    return Contact.objects.filter(organization=organization).prefetch_related("identities")


# An identity's social account outside the organization is a 404; one already held by a contact a 409.
IDENTITY_ERRORS = error_responses({404: ["not_found"], 409: ["identity_taken"]})


class ContactListView(APIView):
    serializer_class = ContactSerializer

    @paginated(ContactSerializer, filters=[OpenApiParameter("email", str), OpenApiParameter("phone", str),
                                           OpenApiParameter("tag", str, description="Contacts carrying this tag.")])
    def get(self, request):
        queryset = _contacts(request.organization)
        for param in ("email", "phone"):
            if request.query_params.get(param):
                queryset = queryset.filter(**{param: request.query_params[param]})
        if request.query_params.get("tag"):
            queryset = queryset.filter(tags__contains=[request.query_params["tag"]])
        return paginate(request, queryset, ContactSerializer)

    @extend_schema(request=ContactSerializer, responses={201: ContactSerializer, **IDENTITY_ERRORS},
                   examples=[OpenApiExample("with an identity", request_only=True, value={
                       "name": "Bob", "email": "bob@example.com", "tags": ["vip"], "custom_fields": {"size": "L"},
                       "identities": [{"social_account_id": "acc_0123456789abcdefghij",
                                       "platform_user_id": "ig-4711"}]})])
    def post(self, request):
        serializer = ContactSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        contact = serializer.save()
        return Response(ContactSerializer(contact).data, status=201)


class ContactDetailView(APIView):
    serializer_class = ContactSerializer

    def get(self, request, pk):
        return Response(ContactSerializer(org_object_or_404(Contact, request.organization, pk,
                                                            queryset=_contacts(request.organization))).data)

    @extend_schema(request=ContactSerializer, responses={200: ContactSerializer, **IDENTITY_ERRORS})
    def patch(self, request, pk):
        with transaction.atomic():
            contact = locked_or_404(Contact, request.organization, pk)
            serializer = ContactSerializer(contact, data=request.data, partial=True, context={"request": request})
            serializer.is_valid(raise_exception=True)
            contact = serializer.save()
        return Response(ContactSerializer(contact).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        org_object_or_404(Contact, request.organization, pk).delete()
        return Response(status=204)


class ConversationListView(APIView):
    serializer_class = ConversationSerializer

    @paginated(ConversationSerializer, filters=[OpenApiParameter("contact_id", str)])
    def get(self, request):
        queryset = Conversation.objects.filter(organization=request.organization)
        if request.query_params.get("contact_id"):
            queryset = queryset.filter(contact_id=request.query_params["contact_id"])
        return paginate(request, queryset, ConversationSerializer)


class ConversationDetailView(APIView):
    serializer_class = ConversationSerializer

    def get(self, request, pk):
        return Response(ConversationSerializer(org_object_or_404(Conversation, request.organization, pk)).data)


class ConversationMessagesView(APIView):
    serializer_class = MessageSerializer

    @paginated(MessageSerializer)
    def get(self, request, pk):
        conversation = org_object_or_404(Conversation, request.organization, pk)
        return paginate(request, conversation.messages.all(), MessageSerializer)
