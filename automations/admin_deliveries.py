"""Admin for raw platform webhook deliveries: what each platform sent, what it became, and the entries
for pages / numbers / bots no connected account has (acknowledged to the platform, kept here)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from automations.models import PlatformDelivery


class UnknownTargetFilter(admin.SimpleListFilter):
    title = "unknown page / number"
    parameter_name = "unknown_target"

    def lookups(self, request, model_admin):
        return [("yes", "has entries for an unknown account"), ("no", "all entries routed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(unknown_targets=[])
        if self.value() == "no":
            return queryset.filter(unknown_targets=[])
        return queryset


@admin.register(PlatformDelivery)
class PlatformDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "source", "social_account", "status", "attempts", "unknown_targets", "entries")
    list_filter = ("source", "status", UnknownTargetFilter)
    search_fields = ("id", "unknown_targets")
    date_hierarchy = "received_at"
    readonly_fields = ("id", "source", "social_account", "status", "attempts", "received_at", "processed_at",
                       "lease_until", "unknown_targets", "last_error", "outcome", "raw_body")
    fields = readonly_fields
    list_select_related = ("social_account",)
    ordering = ("-received_at",)  # ids are random: without this the list is shuffled

    @admin.display(description="entries")
    def entries(self, obj):
        return len(obj.results or [])

    @admin.display(description="What each entry became")
    def outcome(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.results or [], indent=2, ensure_ascii=False))

    @admin.display(description="Body as received")
    def raw_body(self, obj):
        text = bytes(obj.body or b"").decode("utf-8", errors="replace")
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        return format_html("<pre>{}</pre>", text)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
