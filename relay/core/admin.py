from django.contrib import admin, messages

from relay.core.models import ApiKey, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_at")
    search_fields = ("name", "id")
    ordering = ("-created_at",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "organization", "created_at", "last_used_at", "revoked_at")
    list_filter = ("organization",)
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("organization", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    ordering = ("-created_at",)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = ApiKey.objects.create_key(obj.organization, obj.name)
        obj.pk = key.pk
        messages.warning(request, f"New API key (shown once, copy it now): {raw}")
