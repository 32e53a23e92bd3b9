"""Admin for the inbound-event log: what arrived, what we did, and why each entrypoint was skipped —
so "why was this contact never enrolled?" is answered from the admin alone."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from automations.models import EnrollBlocked, InboundEvent

# A trace entry's `result`: the matcher's reason for passing an entrypoint or binding over, or the
# enrollment's refusal.
REASONS = {
    "matched": "matched",
    "keyword_mismatch": "text did not match the keywords",
    "other_account": "entrypoint is scoped to another account",
    "filters_failed": "contact did not pass the filters",
    "not_first_message": "first_message_only, and this was not the first message",
    "post_not_listed": "post not in post_ids",
    "story_not_listed": "story not in story_ids",
    "payload_not_listed": "payload not in payloads",
    "comment_reply_excluded": "comment replies are excluded",
    "none_active": "no active binding",
    **dict(EnrollBlocked.choices),
}


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event_id", "kind", "outcome", "contact", "social_account", "run")
    list_filter = ("outcome", "kind", "social_account")
    search_fields = ("id", "event_id", "contact__id", "contact__name", "run__id")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)  # ids are random: without this the list is shuffled
    readonly_fields = ("id", "event_id", "kind", "outcome", "contact", "conversation", "social_account", "run",
                       "received_at", "decision", "payload")
    fields = readonly_fields
    list_select_related = ("contact", "social_account", "run")

    @admin.display(description="Matcher decision")
    def decision(self, obj):
        if not obj.trace:
            return "No entrypoint of this channel and kind was active." if obj.outcome == "no_match" else "—"
        rows = []
        for entry in obj.trace:
            if "entrypoint_id" in entry:
                what = (f"entrypoint {entry['entrypoint_id']} (automation {entry.get('automation_id')}, "
                        f"specificity {entry.get('specificity')}, priority {entry.get('priority')})")
            elif "binding_id" in entry:
                what = f"binding {entry['binding_type']} {entry['binding_id']} (automation {entry['automation_id']})"
            elif "resumed_run_id" in entry:
                what, entry = f"resumed waiting run {entry['resumed_run_id']}", {"result": "matched"}
            else:
                what = f"bindings {', '.join(entry.get('bindings', []))}"
            result = entry.get("result")
            rows.append((what, REASONS.get(result, result)))
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><td>{}</td><td><b>{}</b></td></tr>", rows))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
