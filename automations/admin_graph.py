"""Admin for automations, entrypoints and bindings.

The automation page shows the graph readably (validation problems on top, then one row per node with
its kind, derived ports and where each port leads) with entrypoints and bindings inline. The graph
itself is edited through the API (PUT /v1/automations/{id}/graph) so it is always validated; status
changes go through the same service as the API (activate refuses an invalid graph)."""

import json

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from automations.admin_insights import AutomationInsightsAdminMixin
from automations.graph import entrypoints as entrypoint_rules
from automations.graph import service
from automations.models import Automation, Binding, Entrypoint
from automations.nodes import registry
from relay.core.errors import ApiError

MAX_CONFIG_PREVIEW = 160
# The inlines' JSON boxes are short; with admin-inlines.css the entrypoint row (ten columns) fits a 1400 px
# window next to the admin's sidebar. They grow by dragging; the entrypoint's own page has full-size ones.
COMPACT_JSON = {models.JSONField: {"widget": forms.Textarea(attrs={"rows": 3})}}
COMPACT_INLINE_CSS = {"all": ["automations/admin-inlines.css"]}


def _issue_rows(issues) -> str:
    return format_html_join(
        "", "<li><code>{}</code> {}{} — {}</li>",
        ((i.get("code", ""), f"[{i['node_key']}]" if i.get("node_key") else "",
          f" port {i['port']}" if i.get("port") else "", i.get("message", "")) for i in issues or []),
    )


def render_problems(automation: Automation) -> str:
    errors, warnings = automation.graph_errors or [], automation.graph_warnings or []
    if not errors and not warnings:
        return mark_safe('<p style="color:#2e7d32">The graph is valid.</p>')
    parts = []
    if errors:
        parts.append(format_html('<p style="color:#c62828"><strong>{} error(s)</strong> — the automation cannot be '
                                 'activated until they are fixed:</p><ul class="graph-errors">{}</ul>',
                                 len(errors), _issue_rows(errors)))
    if warnings:
        parts.append(format_html('<p style="color:#ef6c00"><strong>{} warning(s)</strong>:</p>'
                                 '<ul class="graph-warnings">{}</ul>', len(warnings), _issue_rows(warnings)))
    return mark_safe("".join(parts))  # each part was built with format_html


def _config_preview(config) -> str:
    text = json.dumps(config, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_CONFIG_PREVIEW else text[:MAX_CONFIG_PREVIEW] + "…"


def render_graph_table(automation: Automation) -> str:
    graph = automation.graph or {}
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, dict)]
    if not nodes:
        return mark_safe("<p>No nodes yet.</p>")
    root = graph.get("root_node_key")
    targets = {(e.get("from_node"), e.get("from_port")): e.get("to_node")
               for e in graph.get("edges") or [] if isinstance(e, dict)}
    problem_keys = {i.get("node_key") for i in automation.graph_errors or []}
    rows = []
    for node in nodes:
        key = node.get("key")
        ports = node.get("ports") or []
        if ports:
            leads = format_html_join(mark_safe("<br>"), "<code>{}</code> → {}",
                                     ((port, targets.get((key, port)) or "(not wired)") for port in ports))
        elif node.get("kind") == "goto":
            leads = format_html("jumps to <strong>{}</strong>", (node.get("config") or {}).get("target_node_key"))
        else:
            leads = format_html("<em>{}</em>", "ends the run" if registry.is_terminal(node.get("kind")) else "no ports")
        rows.append(format_html(
            '<tr{}><td><strong>{}</strong>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>',
            mark_safe(' style="background:#ffebee"') if key in problem_keys else "",
            key, mark_safe(" <em>(root)</em>") if key == root else "", node.get("kind"), node.get("title") or "",
            leads, _config_preview(node.get("config")),
        ))
    return format_html(
        '<table class="graph-nodes"><thead><tr><th>Node</th><th>Kind</th><th>Title</th><th>Port → next node</th>'
        "<th>Config</th></tr></thead><tbody>{}</tbody></table>", mark_safe("".join(rows)))


class EntrypointForm(forms.ModelForm):
    """Runs the same per-kind config rules as the API."""

    class Meta:
        model = Entrypoint
        fields = ["kind", "status", "social_account", "config", "filters", "allow_reentry", "reentry_cooldown_min",
                  "priority"]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind:
            problems = entrypoint_rules.validate_config(kind, cleaned.get("config") or {},
                                                        filters=cleaned.get("filters") or {},
                                                        active=cleaned.get("status") == "active")
            if problems:
                raise forms.ValidationError([f"{field}: {' '.join(msgs)}" for field, msgs in problems.items()])
        return cleaned


def _save_entrypoint(request, entrypoint: Entrypoint, automation: Automation, create: bool):
    entrypoint.organization_id = automation.organization_id
    entrypoint.automation = automation
    entrypoint.channel = automation.channel
    secret = entrypoint_rules.apply(entrypoint, create=create)
    if secret:
        messages.warning(request, f"Webhook secret for {entrypoint.pk} (shown once, copy it now): {secret}")


class EntrypointInline(admin.TabularInline):
    model = Entrypoint
    form = EntrypointForm
    extra = 0
    fields = ("kind", "status", "social_account", "config", "filters", "priority", "specificity", "webhook_slug",
              "allow_reentry", "reentry_cooldown_min")
    readonly_fields = ("specificity", "webhook_slug")
    raw_id_fields = ("social_account",)
    show_change_link = True
    formfield_overrides = COMPACT_JSON

    class Media:
        css = COMPACT_INLINE_CSS


class BindingInline(admin.TabularInline):
    model = Binding
    extra = 0
    fields = ("social_account", "binding_type", "status", "config")
    raw_id_fields = ("social_account",)
    formfield_overrides = COMPACT_JSON


@admin.register(Automation)
class AutomationAdmin(AutomationInsightsAdminMixin, admin.ModelAdmin):
    list_display = ("name", "id", "channel", "status", "graph_ok", "total_enrolled", "organization", "created_at")
    list_filter = ("status", "channel", "organization")
    search_fields = ("id", "name")
    ordering = ("-created_at",)
    readonly_fields = ("id", "status", "graph_problems", "graph_table", "graph_json", "total_enrolled",
                       "total_completed", "total_exited", "total_failed", "created_at", "updated_at")
    fieldsets = (
        ("Validation", {"fields": ("graph_problems",)}),
        (None, {"fields": ("id", "name", "organization", "channel", "status")}),
        ("Graph", {"fields": ("graph_table",)}),
        ("Counters", {"fields": (("total_enrolled", "total_completed", "total_exited", "total_failed"),
                                 ("created_at", "updated_at"))}),
        ("Raw graph JSON", {"classes": ("collapse",), "fields": ("graph_json",)}),
    )
    inlines = [EntrypointInline, BindingInline]
    actions = ["activate_selected", "pause_selected", "archive_selected"]

    def get_readonly_fields(self, request, obj=None):
        # organization and channel are fixed once created (entrypoints and bindings depend on them)
        return (*super().get_readonly_fields(request, obj), *(("organization", "channel") if obj else ()))

    @admin.display(boolean=True, description="graph valid")
    def graph_ok(self, obj):
        return not obj.graph_errors

    @admin.display(description="Problems")
    def graph_problems(self, obj):
        return render_problems(obj) if obj and obj.pk else "-"

    @admin.display(description="Nodes")
    def graph_table(self, obj):
        return render_graph_table(obj) if obj and obj.pk else "-"

    @admin.display(description="graph")
    def graph_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.graph, indent=2, ensure_ascii=False)) if obj else "-"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            service.save_graph(obj, obj.graph)  # a new automation gets its validation results right away

    def save_formset(self, request, form, formset, change):
        if formset.model is not Entrypoint:
            for instance in formset.save(commit=False):
                instance.organization_id = form.instance.organization_id
                instance.save()
            for deleted in formset.deleted_objects:
                deleted.delete()
            return
        for instance in formset.save(commit=False):
            _save_entrypoint(request, instance, form.instance, create=instance._state.adding)
        for deleted in formset.deleted_objects:
            deleted.delete()

    def _run(self, request, queryset, action, verb):
        for automation in queryset:
            try:
                action(automation)
                self.message_user(request, f"{automation.name}: {verb}.")
            except ApiError as exc:
                self.message_user(request, f"{automation.name}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Activate (refused when the graph has errors)")
    def activate_selected(self, request, queryset):
        self._run(request, queryset, service.activate, "activated")

    @admin.action(description="Pause")
    def pause_selected(self, request, queryset):
        self._run(request, queryset, service.pause, "paused")

    @admin.action(description="Archive")
    def archive_selected(self, request, queryset):
        self._run(request, queryset, service.archive, "archived")


@admin.register(Entrypoint)
class EntrypointAdmin(admin.ModelAdmin):
    form = EntrypointForm
    list_display = ("id", "automation", "kind", "channel", "status", "specificity", "priority", "social_account",
                    "created_at")
    list_filter = ("kind", "channel", "status")
    search_fields = ("id", "automation__id", "automation__name", "webhook_slug")
    ordering = ("-created_at",)
    raw_id_fields = ("automation", "social_account")
    readonly_fields = ("id", "channel", "specificity", "webhook_slug", "created_at", "updated_at")

    def get_fields(self, request, obj=None):
        return ["automation", *EntrypointForm.Meta.fields, *self.readonly_fields]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ["automation", *EntrypointForm.Meta.fields]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        _save_entrypoint(request, obj, obj.automation, create=not change)


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    list_display = ("id", "social_account", "binding_type", "automation", "status", "created_at")
    list_filter = ("binding_type", "status")
    search_fields = ("id", "automation__id", "social_account__id")
    ordering = ("-created_at",)
    raw_id_fields = ("social_account", "automation")
    fields = ("social_account", "binding_type", "automation", "status", "config")

    def save_model(self, request, obj, form, change):
        obj.organization_id = obj.automation.organization_id
        super().save_model(request, obj, form, change)
