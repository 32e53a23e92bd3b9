"""`Authorization: Bearer <api key>` → request.organization. A key sees only its organization."""

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from relay.core.models import ApiKey, Organization, hash_api_key
from relay.observability import logs


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Stands in for request.user on API requests."""

    organization: Organization
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or " " in raw:
            raise exceptions.AuthenticationFailed()
        key = (
            ApiKey.objects.select_related("organization")
            .filter(key_hash=hash_api_key(raw), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed()
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)  # throttled: not a write per request
        request.organization = key.organization
        logs.ORGANIZATION_ID.set(key.organization_id)  # the request middleware resets it afterwards
        return ApiKeyPrincipal(organization=key.organization, api_key=key), key

    def authenticate_header(self, request):
        return self.keyword


class HasOrganization(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, ApiKeyPrincipal)
