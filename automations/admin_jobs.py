"""Admin for scheduled jobs (the scheduler's queue) and the stuck-run filter the runs admin uses.

The seed's "Stuck waiting" cheatsheet row: waiting runs whose waiting_until is past, pending jobs that
are overdue, failed jobs (with last_error), and runs left active by a dead worker."""

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from automations.insights.health import scheduler_health
from automations.models import JobStatus, RunStatus, ScheduledJob, SchedulerTick
from automations.runtime.scheduler import STALE_ACTIVE_AFTER


class StuckRunFilter(admin.SimpleListFilter):
    """For the AutomationRun admin: `list_filter = [..., StuckRunFilter]`."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [
            ("waiting_overdue", "Waiting past waiting_until"),
            ("active_stale", f"Active > {int(STALE_ACTIVE_AFTER.total_seconds() // 60)} min (worker died?)"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "waiting_overdue":
            return queryset.filter(status=RunStatus.WAITING, waiting_until__lt=now)
        if self.value() == "active_stale":
            return queryset.filter(status__in=[RunStatus.CREATED, RunStatus.ACTIVE],
                                   updated_at__lt=now - STALE_ACTIVE_AFTER)
        return queryset


class JobHealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("overdue", "Pending and overdue"),
            ("retrying", "Pending after a failed attempt"),
            ("failed", "Failed (gave up)"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            # A claimed job's due_at is its lease end (in the future), so jobs being worked on never show here.
            return queryset.filter(status=JobStatus.PENDING, due_at__lt=now)
        if self.value() == "retrying":
            return queryset.filter(status=JobStatus.PENDING, attempts__gt=0).exclude(last_error="")
        if self.value() == "failed":
            return queryset.filter(status=JobStatus.FAILED)
        return queryset


@admin.register(ScheduledJob)
class ScheduledJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "due_at", "overdue", "attempts", "run_link", "entrypoint_id",
                    "organization", "short_error"]
    list_filter = ["status", "kind", JobHealthFilter]
    search_fields = ["id", "run__id", "entrypoint__id"]
    ordering = ["-created_at"]
    date_hierarchy = "due_at"
    list_select_related = ["organization"]
    readonly_fields = ["id", "organization", "kind", "run", "entrypoint", "due_at", "status", "attempts",
                       "last_error", "payload", "created_at", "updated_at"]
    actions = ["retry_now", "cancel_jobs"]

    def has_add_permission(self, request):
        return False  # jobs are written by the runtime in the same transaction as their run

    @admin.display(boolean=True, description="overdue")
    def overdue(self, job):
        return job.status == JobStatus.PENDING and job.due_at < timezone.now()

    @admin.display(description="run")
    def run_link(self, job):
        if not job.run_id:
            return "-"
        try:
            # quote(): the admin escapes "_XX" in ids (an id like arun_22… would otherwise not be found)
            url = reverse("admin:automations_automationrun_change", args=[quote(job.run_id)])
        except NoReverseMatch:
            return job.run_id
        return format_html('<a href="{}">{}</a>', url, job.run_id)

    @admin.display(description="last error")
    def short_error(self, job):
        first_line = (job.last_error or "").splitlines()[:1]
        return first_line[0][:120] if first_line else ""

    @admin.action(description="Retry failed jobs now (attempts reset)")
    def retry_now(self, request, queryset):
        # Only failed jobs: a pending one may be held by a running tick (its due_at is the claim lease).
        now = timezone.now()
        count = queryset.filter(status=JobStatus.FAILED).update(status=JobStatus.PENDING, due_at=now, attempts=0,
                                                                updated_at=now)
        self.message_user(request, f"{count} job(s) will run on the next tick.", messages.SUCCESS)

    @admin.action(description="Cancel pending jobs")
    def cancel_jobs(self, request, queryset):
        count = queryset.filter(status=JobStatus.PENDING).update(status=JobStatus.CANCELLED,
                                                                 updated_at=timezone.now())
        self.message_user(request, f"{count} job(s) cancelled.", messages.SUCCESS)


@admin.register(SchedulerTick)
class SchedulerHealthAdmin(admin.ModelAdmin):
    """Not a list: the admin's "Scheduler health" entry shows `insights.health.scheduler_health`."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        context = {**self.admin_site.each_context(request), "title": "Scheduler health", "opts": self.model._meta,
                   "health": scheduler_health()}
        return TemplateResponse(request, "admin/automations/scheduler_health.html", context)
