"""Admin for runs: list with filters, the run page with its read-only step timeline, and stopping runs
(the "Stop selected runs" action and a "Stop run" button on the run page; both ask for confirmation, call
the same `runtime.runs.stop_run` the API uses and record an admin log entry). Step runs are append-only,
so their admin is read-only: no add, change or delete anywhere. Runs change only through the runtime, so
the run page is view-only too."""

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from automations.admin_insights import RunPathAdminMixin
from automations.admin_jobs import StuckRunFilter
from automations.models import AutomationRun, ExitReason, StepRun
from automations.runtime.runs import RunConflict, stop_run
from relay.core.admin_lists import CappedCountPaginator, SelectedOnlyRelatedFilter


def pretty_json(value) -> str:
    if value in (None, {}, []):
        return "-"
    return format_html('<pre class="relay-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False,
                                                                       sort_keys=True, default=str))


def executed_stamp(step) -> str:
    return step.executed_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if step.executed_at else "-"


class ExitReasonFilter(admin.SimpleListFilter):
    """The known exit reasons (an end node's own reason still filters by URL, `?exit_reason=…`): Django's
    default for a free-text field would read `SELECT DISTINCT exit_reason` over every run per page view."""

    title = "exit reason"
    parameter_name = "exit_reason"

    def lookups(self, request, model_admin):
        return ExitReason.choices

    def queryset(self, request, queryset):
        return queryset.filter(exit_reason=self.value()) if self.value() else queryset


class NodeKindFilter(admin.SimpleListFilter):
    """The node kinds of the registry, not `SELECT DISTINCT node_kind` over every step row per page view."""

    title = "node kind"
    parameter_name = "node_kind"

    def lookups(self, request, model_admin):
        from automations.nodes.registry import KINDS

        return [(kind, kind) for kind in KINDS]

    def queryset(self, request, queryset):
        return queryset.filter(node_kind=self.value()) if self.value() else queryset


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


STEP_FIELDS = ["executed", "node_key", "node_kind", "entered_via_port_key", "exited_via_port_key", "outcome",
               "duration_ms", "payload_json", "error_json"]


class StepTimelineInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every node visit of the run, oldest first."""

    model = StepRun
    fk_name = "run"
    verbose_name = "step"
    verbose_name_plural = "step timeline (oldest first)"
    fields = STEP_FIELDS
    readonly_fields = STEP_FIELDS
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("executed_at", "id")

    @admin.display(description="executed at")
    def executed(self, step):
        return executed_stamp(step)

    @admin.display(description="payload")
    def payload_json(self, step):
        return pretty_json(step.payload)

    @admin.display(description="error")
    def error_json(self, step):
        return pretty_json(step.error)


@admin.register(AutomationRun)
class AutomationRunAdmin(RunPathAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/automations/run/change_form.html"
    list_display = ["id", "automation", "contact", "status", "current_node_key", "waiting_for", "waiting_until",
                    "exit_reason", "started_at", "completed_at"]
    # Both tables grow without bound: no DISTINCT over the runs for the sidebar, no full count per page.
    list_filter = ["status", StuckRunFilter, ("automation", admin.RelatedFieldListFilter),
                   ("contact", SelectedOnlyRelatedFilter), "waiting_for", ExitReasonFilter]
    search_fields = ["=id"]
    search_help_text = "Search by run id (arun_…)."
    list_select_related = ["automation", "contact"]
    ordering = ["-started_at"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = ["id", "organization", "automation", "entrypoint", "binding", "contact", "conversation",
              "social_account", "status", "current_node_key", "current_port_key", "context_json", "waiting_for",
              "waiting_until", "exit_reason", "trigger_depth", "started_at", "completed_at", "updated_at"]
    readonly_fields = fields
    inlines = [StepTimelineInline]
    actions = ["stop_selected"]

    @admin.display(description="context")
    def context_json(self, run):
        return pretty_json(run.context)

    def has_stop_permission(self, request):
        """Stopping is the one change an operator makes to a run: it takes the change permission on runs."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(description="Stop selected runs", permissions=["stop"])
    def stop_selected(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return self.stop_confirmation(request, list(queryset), action="stop_selected")
        self.stop_runs(request, queryset)
        return None  # back to the list

    def get_urls(self):
        stop = path("<path:object_id>/stop/", self.admin_site.admin_view(self.stop_view),
                    name=f"{self.opts.app_label}_{self.opts.model_name}_stop")
        return [stop, *super().get_urls()]

    def stop_view(self, request, object_id):
        """The run page's "Stop run" button: a confirmation page, then the stop on POST."""
        if not self.has_stop_permission(request):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if request.method == "POST" and request.POST.get("confirmed") == "yes":
            self.stop_runs(request, [run])
            return HttpResponseRedirect(reverse("admin:automations_automationrun_change", args=[quote(run.pk)]))
        return self.stop_confirmation(request, [run])

    def stop_confirmation(self, request, runs, action=None):
        live = [run for run in runs if run.is_live]
        context = {
            **self.admin_site.each_context(request),
            "title": "Stop runs?" if action else f"Stop run {runs[0].pk}?",
            "opts": self.opts,
            "live_runs": live,
            "finished_runs": [run for run in runs if not run.is_live],
            "selected": runs,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/automations/run/stop_confirmation.html", context)

    def stop_runs(self, request, runs):
        stopped = skipped = conflicts = 0
        for run in runs:
            try:
                if stop_run(run):
                    stopped += 1
                    self.log_change(request, run, "Stopped from the admin (exit reason admin_stopped).")
                else:
                    skipped += 1
            except RunConflict:
                conflicts += 1
        self.message_user(request, f"Stopped {stopped} run(s); {skipped} already finished.", messages.SUCCESS)
        if conflicts:
            self.message_user(request, f"{conflicts} run(s) kept changing; try again.", messages.WARNING)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_stop": self.has_stop_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "executed_at", "run_id", "node_key", "node_kind", "entered_via_port_key",
                    "exited_via_port_key", "outcome", "duration_ms"]
    list_filter = ["outcome", NodeKindFilter]
    search_fields = ["=run__id"]
    search_help_text = "Search by run id (arun_…)."
    ordering = ["-executed_at", "-id"]  # the (executed_at, id) index of every partition: no sort of the table
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = ["id", "run_id", "automation_id", *STEP_FIELDS]
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_json(self, step):
        return pretty_json(step.payload)

    @admin.display(description="error")
    def error_json(self, step):
        return pretty_json(step.error)

    @admin.display(description="executed at")
    def executed(self, step):
        return executed_stamp(step)
