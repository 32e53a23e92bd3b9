"""Contacts admin. Pause rows are written through `runtime.controls`, as the API writes them: a saved row
gets its `pause_expiry` job, a deleted row resumes the runs it parked."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils import timezone

from automations.runtime import controls
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
    """Provider, status and the last error are shown; the credentials never are (not even encrypted):
    they are set through the API (`credentials`) and checked with "Verify selected accounts"."""

    list_display = ("name", "id", "channel", "provider", "status", "display_name", "last_error_at", "organization",
                    "created_at")
    list_filter = ("channel", "provider", "status", "organization")
    search_fields = ("id", "name", "external_id", "display_name")
    ordering = ("-created_at",)
    exclude = ("credentials_encrypted",)
    readonly_fields = ("status", "display_name", "has_credentials", "last_error", "last_error_at", "created_at",
                       "updated_at")
    actions = ["verify_accounts"]

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, obj) -> bool:
        return bool(obj.credentials_encrypted)

    @admin.action(description="Verify selected accounts with their platform")
    def verify_accounts(self, request, queryset):
        from automations.channels.errors import ChannelError
        from automations.channels.verify import verify_account

        for account in queryset:
            try:
                account = verify_account(account)
                self.message_user(request, f"{account}: {account.status}")
            except ChannelError as exc:
                self.message_user(request, f"{account}: not verified ({exc})", level="warning")


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0


class ControlForm(forms.ModelForm):
    def clean_paused_until(self):
        """controls.pause_contact refuses a past paused_until; say so on the field instead of a 500."""
        until = self.cleaned_data.get("paused_until")
        if until is not None and self.has_changed() and until <= timezone.now():
            raise forms.ValidationError("Must be in the future (leave empty to pause until resumed).")
        return until


def save_pause(obj: ContactAutomationControl) -> None:
    """Write an admin-edited pause row through controls.pause_contact (upsert by scope, expiry job
    rescheduled); if the edit moved the row to another contact/automation, the old scope is resumed."""
    previous = None if obj._state.adding else ContactAutomationControl.objects.filter(pk=obj.pk).first()
    control, _ = controls.pause_contact(obj.contact, automation=obj.automation, pause_reason=obj.pause_reason,
                                        paused_until=obj.paused_until)
    if previous is not None and (previous.contact_id, previous.automation_id) != (control.contact_id,
                                                                                  control.automation_id):
        delete_pause(previous)
    for name in ("id", "organization_id", "created_at", "updated_at"):
        setattr(obj, name, getattr(control, name))
    obj._state.adding = False


def delete_pause(obj: ContactAutomationControl) -> None:
    """Delete through controls.resume_contact once the admin's transaction commits: it cancels the
    expiry job and resumes the parked runs, which advance and commit on their own."""
    contact, automation = obj.contact, obj.automation
    transaction.on_commit(lambda: controls.resume_contact(contact, automation=automation))


class ControlInline(admin.TabularInline):
    model = ContactAutomationControl
    form = ControlForm
    fk_name = "contact"
    extra = 0
    fields = ("automation", "pause_reason", "paused_until", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "id", "email", "phone", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("id", "name", "email", "phone")
    ordering = ("-created_at",)
    inlines = [IdentityInline, ControlInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not ContactAutomationControl:
            return super().save_formset(request, form, formset, change)
        changed = formset.save(commit=False)  # nothing written yet: pause rows go through controls
        for obj in formset.deleted_objects:
            delete_pause(obj)
        for obj in changed:
            save_pause(obj)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("created_at", "direction", "text", "status", "error_code", "run_id", "node_key")
    readonly_fields = fields
    ordering = ("created_at",)
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "contact", "social_account", "created_at", "last_inbound_at")
    search_fields = ("id", "contact__id", "contact__name")
    ordering = ("-created_at",)
    raw_id_fields = ("contact", "social_account")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Delivery status and the provider's answer (message id, or error code and text); `unknown` means
    the request may have gone out and is never resent."""

    list_display = ("id", "direction", "text", "status", "error_code", "conversation", "run_id", "created_at")
    list_filter = ("direction", "status", "error_code")
    search_fields = ("id", "text", "run_id", "conversation__id", "provider_message_id")
    ordering = ("-created_at",)  # ids are random: without this the list is shuffled
    raw_id_fields = ("conversation",)


@admin.register(ContactAutomationControl)
class ContactAutomationControlAdmin(admin.ModelAdmin):
    form = ControlForm
    list_display = ("id", "contact", "automation", "pause_reason", "paused_until", "created_at")
    search_fields = ("id", "contact__id")
    ordering = ("-created_at",)
    raw_id_fields = ("contact", "automation")
    fields = ("contact", "automation", "pause_reason", "paused_until", "organization", "created_at")
    readonly_fields = ("organization", "created_at")  # both follow from the contact / the write

    def save_model(self, request, obj, form, change):
        if change and not form.has_changed():  # nothing edited: rewriting it would re-check a passed expiry
            return
        save_pause(obj)

    def delete_model(self, request, obj):
        delete_pause(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("contact", "automation"):
            delete_pause(obj)
