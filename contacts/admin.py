from django.contrib import admin

from contacts.models import (
    Contact,
    ContactAutomationControl,
    ContactIdentity,
    Conversation,
    Message,
    SocialAccount,
)


@admin.register(SocialAccount)
class SocialAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "channel", "provider", "external_id", "organization", "created_at")
    list_filter = ("channel", "provider", "organization")
    search_fields = ("id", "name", "external_id")


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0


class ControlInline(admin.TabularInline):
    model = ContactAutomationControl
    fk_name = "contact"
    extra = 0
    fields = ("automation", "pause_reason", "paused_until", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "id", "email", "phone", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("id", "name", "email", "phone")
    inlines = [IdentityInline, ControlInline]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("created_at", "direction", "text", "status", "run_id", "node_key")
    readonly_fields = fields
    ordering = ("created_at",)
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "contact", "social_account", "created_at", "last_inbound_at")
    search_fields = ("id", "contact__id", "contact__name")
    raw_id_fields = ("contact", "social_account")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "direction", "text", "status", "conversation", "run_id", "created_at")
    list_filter = ("direction", "status")
    search_fields = ("id", "text", "run_id", "conversation__id")
    raw_id_fields = ("conversation",)


@admin.register(ContactAutomationControl)
class ContactAutomationControlAdmin(admin.ModelAdmin):
    list_display = ("id", "contact", "automation", "pause_reason", "paused_until", "created_at")
    search_fields = ("id", "contact__id")
    raw_id_fields = ("contact", "automation")
