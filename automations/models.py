"""What we run: automations (graph JSONB), entrypoints, bindings, runs, step runs, scheduled jobs and
the inbound-event log. Every status, waiting_for value, exit reason, job kind, inbound event kind and
enrollment refusal is defined here."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.models import Channel, Contact, Conversation, SocialAccount
from relay.core.ids import PrefixedIdField
from relay.core.models import Organization


def empty_graph():
    return {"nodes": [], "edges": [], "root_node_key": None}


class AutomationStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Automation(models.Model):
    id = PrefixedIdField("auto")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=AutomationStatus.choices, default=AutomationStatus.DRAFT)
    graph = models.JSONField(default=empty_graph)
    graph_errors = models.JSONField(default=list, blank=True)
    graph_warnings = models.JSONField(default=list, blank=True)
    total_enrolled = models.PositiveIntegerField(default=0)
    total_completed = models.PositiveIntegerField(default=0)
    total_exited = models.PositiveIntegerField(default=0)
    total_failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automations"
        indexes = [models.Index(fields=["organization", "-created_at"], name="automation_org_created")]

    def __str__(self):
        return f"{self.name} ({self.id})"


class InboundKind(models.TextChoices):
    """What an inbound event is (`InboundEvent.kind`): something the contact did on a channel, a change
    to the contact a platform reported, or a delivery to a `webhook_inbound` entrypoint. Entrypoints
    listen for them under the same values (`EntrypointKind`)."""

    # what the contact did on a channel
    DM_RECEIVED = "dm_received"
    COMMENT_CREATED = "comment_created"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    POSTBACK = "postback"
    LIVE_COMMENT = "live_comment"  # recorded and offered to waiting runs; no entrypoint kind of its own yet
    SHARE_TO_DM = "share_to_dm"
    AD_CLICK = "ad_click"
    # a change to the contact (CONTACT_CHANGE_KINDS)
    TAG_APPLIED = "tag_applied"
    TAG_REMOVED = "tag_removed"
    FIELD_CHANGED = "field_changed"
    # a signed delivery to a webhook_inbound entrypoint
    WEBHOOK_INBOUND = "webhook_inbound"


class EntrypointKind(models.TextChoices):
    DM_RECEIVED = "dm_received"
    COMMENT_CREATED = "comment_created"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    POSTBACK = "postback"
    TAG_APPLIED = "tag_applied"
    TAG_REMOVED = "tag_removed"
    FIELD_CHANGED = "field_changed"
    SCHEDULE = "schedule"
    WEBHOOK_INBOUND = "webhook_inbound"


# The inbound kinds that change the contact: applied to its row once per event, then they start the
# automations listening for them.
CONTACT_CHANGE_KINDS = (InboundKind.TAG_APPLIED, InboundKind.TAG_REMOVED, InboundKind.FIELD_CHANGED)


class ActiveStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"


class Entrypoint(models.Model):
    # Which entrypoint wins when several match an event: the most specific, then the lowest priority
    # number, then the oldest. The one statement of the rule: the ORM (internal events) orders by it and
    # the store's SITUATION renders it into SQL (store.base.order_by).
    MATCH_ORDER = ("-specificity", "priority", "created_at", "id")

    id = PrefixedIdField("aep")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="entrypoints")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    kind = models.CharField(max_length=30, choices=EntrypointKind.choices)
    status = models.CharField(max_length=10, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    social_account = models.ForeignKey(SocialAccount, null=True, blank=True, on_delete=models.CASCADE,
                                       related_name="entrypoints")
    config = models.JSONField(default=dict, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    allow_reentry = models.BooleanField(default=True)
    reentry_cooldown_min = models.PositiveIntegerField(default=60)
    priority = models.IntegerField(default=100)
    specificity = models.IntegerField(default=0, editable=False)
    webhook_slug = models.CharField(max_length=64, null=True, blank=True, unique=True)
    webhook_secret = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automation_entrypoints"
        indexes = [
            models.Index(fields=["organization", "channel", "kind", "status"], name="entrypoint_match"),
        ]

    def __str__(self):
        return f"{self.kind} entrypoint {self.id} of {self.automation_id}"


class BindingType(models.TextChoices):
    DEFAULT_REPLY = "default_reply"
    WELCOME_MESSAGE = "welcome_message"


class Binding(models.Model):
    id = PrefixedIdField("abnd")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    social_account = models.ForeignKey(SocialAccount, on_delete=models.CASCADE, related_name="bindings")
    binding_type = models.CharField(max_length=30, choices=BindingType.choices)
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="bindings")
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automation_bindings"
        constraints = [
            models.UniqueConstraint(fields=["social_account", "binding_type"], name="binding_unique_per_account"),
        ]

    def __str__(self):
        return f"{self.binding_type} binding {self.id} of {self.automation_id}"


class RunStatus(models.TextChoices):
    CREATED = "created"
    ACTIVE = "active"
    WAITING = "waiting"
    COMPLETED = "completed"
    EXITED = "exited"
    FAILED = "failed"


LIVE_RUN_STATUSES = (RunStatus.CREATED, RunStatus.ACTIVE, RunStatus.WAITING)
FINISHED_RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.EXITED, RunStatus.FAILED)


class WaitingFor(models.TextChoices):
    INPUT = "input"
    REPLY = "reply"  # a message with buttons / quick replies / wait_for_reply
    DELAY = "delay"
    INBOUND_EVENT = "inbound_event"
    EXTERNAL_EVENT = "external_event"  # parked by a contact pause
    DELIVERY = "delivery"  # a message node on a network provider, until the platform accepted its parts


class ExitReason(models.TextChoices):
    COMPLETED = "completed"
    GRAPH_CHANGED = "graph_changed"
    NODE_REMOVED = "node_removed"
    CONTACT_PAUSED = "contact_paused"
    REENTRY_COOLDOWN = "reentry_cooldown"
    INPUT_TIMEOUT = "input_timeout"
    ADMIN_STOPPED = "admin_stopped"
    HANDLER_FAILURE = "handler_failure"
    INFINITE_LOOP_CAP = "infinite_loop_cap"


class AutomationRun(models.Model):
    """One contact's journey through one automation (the seed's "Run shape")."""

    id = PrefixedIdField("arun")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs")
    entrypoint = models.ForeignKey(Entrypoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    binding = models.ForeignKey(Binding, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="automation_runs")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="automation_runs")
    social_account = models.ForeignKey(SocialAccount, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="automation_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.ACTIVE)
    current_node_key = models.CharField(max_length=100, null=True, blank=True)
    current_port_key = models.CharField(max_length=150, null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    waiting_until = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(max_length=20, choices=WaitingFor.choices, null=True, blank=True)
    exit_reason = models.CharField(max_length=100, null=True, blank=True)
    trigger_depth = models.PositiveSmallIntegerField(
        default=0, help_text="How many automations triggered each other to start this run (loop guard)."
    )
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set explicitly by the run writer (never auto_now): it is the optimistic-concurrency token.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "automation_runs"
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "automation"],
                condition=Q(status__in=["created", "active", "waiting"]),
                name="one_live_run_per_contact_automation",
            ),
        ]
        indexes = [
            models.Index(fields=["automation", "-started_at"], name="run_automation_started"),
            models.Index(fields=["organization", "started_at"], name="run_org_started"),  # insights roll-up
            models.Index(fields=["contact", "status"], name="run_contact_status"),
            models.Index(fields=["status", "updated_at"], name="run_status_updated"),
            # The admin's run list, newest first (ORDER BY started_at DESC, id DESC) without sorting the table.
            models.Index(fields=["-started_at", "-id"], name="run_started"),
            # An automation's runs with one status, newest first (the API's `?status=`), without reading the
            # runs of every other status on the way.
            models.Index(fields=["automation", "status", "-started_at", "-id"], name="run_automation_status"),
        ]

    def __str__(self):
        return self.id

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_RUN_STATUSES


class StepOutcome(models.TextChoices):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"


class AppendOnlyError(Exception):
    pass


class StepRunQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("automation_step_runs is append-only: rows are never updated")

    def delete(self):
        raise AppendOnlyError("automation_step_runs is append-only: drop whole partitions instead")


class StepRun(models.Model):
    """One node visit. Append-only; the table is partitioned monthly on executed_at (see migrations and
    automations.partitions). The database primary key is (id, executed_at); Django addresses rows by id."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(AutomationRun, on_delete=models.DO_NOTHING, db_constraint=False, related_name="steps")
    automation = models.ForeignKey(Automation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    node_key = models.CharField(max_length=100)
    node_kind = models.CharField(max_length=30)
    entered_via_port_key = models.CharField(max_length=150, null=True, blank=True)
    exited_via_port_key = models.CharField(max_length=150, null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=StepOutcome.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    payload = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    executed_at = models.DateTimeField(default=timezone.now)

    objects = StepRunQuerySet.as_manager()

    class Meta:
        db_table = "automation_step_runs"

    def __str__(self):
        return f"step {self.id} of {self.run_id}: {self.node_key} ({self.outcome})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("automation_step_runs is append-only: rows are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("automation_step_runs is append-only: drop whole partitions instead")


class JobKind(models.TextChoices):
    RESUME_DELAY = "resume_delay"
    INPUT_TIMEOUT = "input_timeout"
    NO_RESPONSE_TIMEOUT = "no_response_timeout"
    WAIT_EVENT_TIMEOUT = "wait_event_timeout"
    PAUSE_EXPIRY = "pause_expiry"
    SCHEDULE_TRIGGER = "schedule_trigger"


class JobStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ScheduledJob(models.Model):
    id = PrefixedIdField("ajob")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=JobKind.choices)
    run = models.ForeignKey(AutomationRun, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    entrypoint = models.ForeignKey(Entrypoint, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automation_scheduled_jobs"
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="job_pending_due"),
            models.Index(fields=["run", "status"], name="job_run_status"),
        ]

    def __str__(self):
        due = f"{self.due_at:%Y-%m-%d %H:%M:%S}" if self.due_at else "-"
        return f"{self.kind} job {self.id} ({self.status}, due {due})"


class SchedulerTick(models.Model):
    """The scheduler's latest tick, one row (id 1) overwritten at the end of every tick: when it ran,
    how long it took, what it claimed and how late its latest-running job was (due → claimed). The
    admin's scheduler health page reads it; with several beats by mistake it is the last one's."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(default=0)
    last_claimed = models.PositiveIntegerField(default=0)
    last_max_lag_ms = models.BigIntegerField(default=0, help_text="Due → claimed, the latest job of the tick.")
    ticks_total = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "automation_scheduler_ticks"
        verbose_name = "scheduler health"
        verbose_name_plural = "scheduler health"

    def __str__(self):
        last = f"{self.last_tick_at:%Y-%m-%d %H:%M:%S}" if self.last_tick_at else "never"
        return f"scheduler: last tick {last}, {self.ticks_total} in all"


class InboundOutcome(models.TextChoices):
    RESUMED = "resumed"
    ENROLLED = "enrolled"
    NO_MATCH = "no_match"
    CONTACT_PAUSED = "contact_paused"
    REENTRY_BLOCKED = "reentry_blocked"
    DUPLICATE = "duplicate"
    FILTERED_OUT = "filtered_out"  # a webhook entrypoint's filters kept the contact out


class EnrollBlocked(models.TextChoices):
    """Why `enrollment.enroll` did not enroll a contact (`EnrollResult.blocked`; the API's enroll refusals
    use the values as error codes), and what each refusal comes to: the label the admin's inbound-event
    trace shows, an inbound event's outcome (`inbound_outcome`), a trigger-path skip row's exit reason
    (`skip_reason`)."""

    CONTACT_PAUSED = "contact_paused", "contact is paused"
    REENTRY_BLOCKED = "reentry_blocked", "re-entry blocked (live run or cooldown)"
    AUTOMATION_NOT_ACTIVE = "automation_not_active", "automation is not active"
    TRIGGER_DEPTH_EXCEEDED = "trigger_depth_exceeded", "trigger depth exceeded (automations starting each other)"

    @property
    def inbound_outcome(self) -> str:
        return EnrollBlocked.inbound_outcome_of({self})

    @classmethod
    def inbound_outcome_of(cls, reasons) -> str:
        """The outcome of an event whose enrollments were refused for `reasons`: a pause over re-entry,
        the other refusals (or none) `no_match`."""
        return next((outcome for reason, outcome in _BLOCKED_OUTCOMES.items() if reason in reasons),
                    InboundOutcome.NO_MATCH)

    @property
    def skip_reason(self) -> str | None:
        """The exit reason of the row a refused trigger-path enrollment leaves (None: it leaves none)."""
        return _SKIP_REASONS.get(self)


_BLOCKED_OUTCOMES = {EnrollBlocked.CONTACT_PAUSED: InboundOutcome.CONTACT_PAUSED,
                     EnrollBlocked.REENTRY_BLOCKED: InboundOutcome.REENTRY_BLOCKED}
_SKIP_REASONS = {EnrollBlocked.CONTACT_PAUSED: ExitReason.CONTACT_PAUSED,
                 EnrollBlocked.REENTRY_BLOCKED: ExitReason.REENTRY_COOLDOWN}


class InboundEvent(models.Model):
    """Every channel event and webhook delivery we received, with what we did about it and why (answers
    "never enrolled")."""

    id = PrefixedIdField("evt")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=200)
    social_account = models.ForeignKey(SocialAccount, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    kind = models.CharField(max_length=40)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    payload = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=20, choices=InboundOutcome.choices, null=True, blank=True)
    run = models.ForeignKey(AutomationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    trace = models.JSONField(default=list, blank=True, help_text="Entrypoints considered and why each was skipped.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "automation_inbound_events"
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_id"], name="inbound_event_unique_id"),
        ]
        indexes = [
            models.Index(fields=["organization", "-received_at"], name="inbound_org_received"),
            # The tick's sweep for events whose processing died (few rows: only those without an outcome).
            models.Index(fields=["received_at"], condition=Q(outcome__isnull=True), name="inbound_unfinished"),
        ]

    def __str__(self):
        return f"{self.kind} event {self.event_id} ({self.outcome or 'not yet handled'})"


class SendSlot(models.Model):
    """Send pacing (automations.channels.pacing): the earliest time the next message may go out through
    one account (`a:<account id>`) or into one chat (`c:<conversation id>`). A token bucket of size one
    kept in PostgreSQL, so every worker shares it and the embedded default needs nothing else."""

    key = models.CharField(max_length=120, primary_key=True)
    next_at = models.DateTimeField()

    class Meta:
        db_table = "channel_send_slots"

    def __str__(self):
        return f"{self.key}: next send at {self.next_at.isoformat()}"


class WebhookSource(models.TextChoices):
    """Which platform endpoint a raw delivery came in through (Meta's carries Messenger and Instagram)."""

    META = "meta"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"


class PlatformDeliveryStatus(models.TextChoices):
    PENDING = "pending"  # stored, not processed yet (or its processing died: the tick hands it out again)
    DONE = "done"
    FAILED = "failed"  # gave up after the last attempt; last_error says why


class PlatformDelivery(models.Model):
    """One verified platform webhook POST, stored as it arrived before it is answered, then processed
    on a worker. `lease_until` is both when an unfinished delivery is handed out again and the token the
    task that holds it must present. Pruned after RELAY_PLATFORM_DELIVERY_RETENTION_DAYS."""

    id = PrefixedIdField("whd")
    source = models.CharField(max_length=10, choices=WebhookSource.choices)
    social_account = models.ForeignKey(SocialAccount, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", help_text="Telegram: the bot the URL names.")
    body = models.BinaryField(help_text="The exact bytes the platform sent (and signed).")
    status = models.CharField(max_length=10, choices=PlatformDeliveryStatus.choices,
                              default=PlatformDeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    results = models.JSONField(default=list, blank=True, help_text="What each entry became, or why it was skipped.")
    unknown_targets = ArrayField(models.CharField(max_length=200), default=list, blank=True,
                                 help_text="Pages / numbers / accounts no connected account has.")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automation_platform_deliveries"
        verbose_name_plural = "platform deliveries"
        indexes = [
            models.Index(fields=["received_at"], name="platform_delivery_received"),
            models.Index(fields=["lease_until"], name="platform_delivery_pending",
                         condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.source} delivery {self.id} ({self.status})"


class RollupBucket(models.TextChoices):
    HOUR = "hour"
    DAY = "day"
    PART = "part", "Open hour so far"  # the hour after the watermark, up to the watermark's `part_until`
    SIX = "six", "Six hours"  # 00–06, 06–12, 12–18, 18–24 UTC: a period's partial first or last day reads them


class NodeRollup(models.Model):
    """Step-run figures of one closed hour or day per (automation, entrypoint, binding, node): what the
    insights read instead of the rows themselves (automations.insights.rollup). Rebuilt, never incremented:
    a bucket's rows are replaced from the step rows in one transaction, so re-running cannot double count.

    `first_arrivals` counts steps with no earlier step of the same run at the node; `returns` the other
    steps whose previous visit was before the bucket, as {epoch second of that visit's hour: count} — enough
    to count distinct runs over any run of buckets. `duration_bins` (ascending, ms) and `duration_counts` are
    a histogram of the steps' durations (two arrays: unnest reads them several times faster than jsonb)."""

    id = models.BigAutoField(primary_key=True)
    automation_id = models.CharField(max_length=40)
    entrypoint_id = models.CharField(max_length=40, null=True, blank=True)
    binding_id = models.CharField(max_length=40, null=True, blank=True)
    bucket = models.CharField(max_length=4, choices=RollupBucket.choices)
    bucket_start = models.DateTimeField()
    node_key = models.CharField(max_length=100)
    node_kind = models.CharField(max_length=30)
    success = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    waiting = models.PositiveIntegerField(default=0)
    first_arrivals = models.PositiveIntegerField(default=0)
    returns = models.JSONField(default=dict, blank=True)
    exits_by_port = models.JSONField(default=dict, blank=True)
    duration_bins = ArrayField(models.PositiveIntegerField(), default=list, blank=True)
    duration_counts = ArrayField(models.PositiveIntegerField(), default=list, blank=True)

    class Meta:
        db_table = "automation_node_rollups"
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "bucket_start", "automation_id", "entrypoint_id", "binding_id", "node_key",
                        "node_kind"],
                name="node_rollup_unique", nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["automation_id", "bucket", "bucket_start"], name="node_rollup_lookup")]

    def __str__(self):
        return f"{self.automation_id} {self.node_key}, {self.bucket} from {self.bucket_start.isoformat()}"


class RunRollup(models.Model):
    """Finished runs of one closed hour or day of finishing, per (automation, entrypoint, binding, hour or
    day they started, status, exit reason): what the insights' `totals`, `exit_reasons` and `series` read
    instead of the runs started in the period (automations.insights.rollup). A finished run's status and
    reason never change again, so a bucket of finishing is final once closed; runs still live are counted
    from their rows. Rebuilt, never incremented, like NodeRollup."""

    id = models.BigAutoField(primary_key=True)
    automation_id = models.CharField(max_length=40)
    entrypoint_id = models.CharField(max_length=40, null=True, blank=True)
    binding_id = models.CharField(max_length=40, null=True, blank=True)
    bucket = models.CharField(max_length=4, choices=RollupBucket.choices)
    finished_start = models.DateTimeField(help_text="The hour or day the runs finished in.")
    started_start = models.DateTimeField(help_text="The hour or day (as `bucket`) the runs started in.")
    status = models.CharField(max_length=10, choices=RunStatus.choices)
    exit_reason = models.CharField(max_length=100, null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "automation_run_rollups"
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "finished_start", "automation_id", "entrypoint_id", "binding_id",
                        "started_start", "status", "exit_reason"],
                name="run_rollup_unique", nulls_distinct=False,
            ),
        ]
        indexes = [
            # a period's started hours and days; the hours of today's closed finishes
            models.Index(fields=["automation_id", "bucket", "started_start"], name="run_rollup_started"),
            models.Index(fields=["automation_id", "bucket", "finished_start"], name="run_rollup_finished"),
        ]

    def __str__(self):
        return (f"{self.automation_id} {self.status}, started {self.bucket} {self.started_start.isoformat()}, "
                f"finished {self.finished_start.isoformat()}")


class RollupWatermark(models.Model):
    """One row (id 1): step rows executed and runs finished before `rolled_up_until` are in
    automation_node_rollups and automation_run_rollups; the step rows of [rolled_up_until, part_until) are
    in its `part` rows (rebuilt every beat to the last five minutes closed, so a period ending now reads
    minutes of step rows, not up to an hour)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    rolled_up_until = models.DateTimeField(null=True, blank=True)
    part_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "automation_rollup_watermark"

    def __str__(self):
        until = self.rolled_up_until.isoformat() if self.rolled_up_until else "nothing yet"
        return f"insights rolled up until {until}"


class WebhookDelivery(models.Model):
    """A signed webhook delivery that was accepted, kept while its signature could still be replayed
    (the timestamp tolerance either way), so the same signed request is accepted once."""

    entrypoint = models.ForeignKey(Entrypoint, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64, help_text="The delivery's v1 HMAC (hex): unique per body and t.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "automation_webhook_deliveries"
        constraints = [
            models.UniqueConstraint(fields=["entrypoint", "signature"], name="webhook_delivery_once"),
        ]
        indexes = [models.Index(fields=["entrypoint", "received_at"], name="webhook_delivery_received")]

    def __str__(self):
        return f"webhook delivery {self.signature[:12]}… to {self.entrypoint_id} at {self.received_at.isoformat()}"
