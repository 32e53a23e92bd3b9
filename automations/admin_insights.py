"""The admin's pictures (automations.insights.svg), added to the automation page and the run page as
their own fieldsets by two mixins, so the admin classes themselves change by one base class each.

- Automation page: the graph with the period's visits and drop-off per node, runs over time and exit
  reasons (`?period=24h|7d|30d|90d`, default 7d), from the same queries as the insights API.
- Run page: the graph with the run's path (nodes visited, ports taken) and its current node.
"""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from automations.insights import queries, svg
from automations.insights.queries import Scope, ScopeKind
from automations.models import StepRun

INSIGHTS_FIELD = "insights_pictures"
PATH_FIELD = "path_picture"


def _with_fieldset(fieldsets, title: str, field: str, after: str | None = None) -> list:
    """The fieldsets with ours inserted after the one titled `after` (else at the end)."""
    fieldsets = list(fieldsets)
    titles = [name for name, _options in fieldsets]
    position = titles.index(after) + 1 if after in titles else len(fieldsets)
    fieldsets.insert(position, (title, {"fields": (field,)}))
    return fieldsets


def automation_pictures(automation, period: str | None) -> str:
    period = period if period in queries.PRESET_PERIODS else queries.DEFAULT_PERIOD
    window = queries.parse_window({"period": period})
    scope = Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk)
    figures = queries.insights(scope, window, automation.graph or {})
    dropoff = queries.dropoff_by_node(automation.pk, window)
    stats = {n["node_key"]: {"visits": n["visits"], "dropoff": dropoff.get(n["node_key"], 0)}
             for n in figures["nodes"]}
    picture = svg.GraphPicture(node_stats=stats,
                               invalid_nodes={i.get("node_key") for i in automation.graph_errors or []})
    links = format_html_join(" · ", '<a href="?period={0}"{1}>{0}</a>',
                             ((p, mark_safe(' style="font-weight:bold"') if p == period else "")
                              for p in queries.PRESET_PERIODS))
    return format_html(
        '<div class="relay-insights" data-period="{}"><p>Period: {} — {} to {} (UTC). Visits: runs that reached '
        "the node; drop-off: runs started in the period that exited or failed there.</p>"
        '<h3>Graph</h3><div class="relay-graph-wrap">{}</div>'
        '<h3>Runs over time</h3><div>{}</div><h3>Exit reasons</h3><div>{}</div></div>',
        period, links, f"{window.start:%Y-%m-%d %H:%M:%S}", f"{window.end:%Y-%m-%d %H:%M:%S}",
        svg.graph_svg(automation.graph or {}, picture),
        svg.runs_chart_svg(figures["series"], window.bucket), svg.exit_reasons_svg(figures["exit_reasons"]))


def run_path_picture(run) -> str:
    # A run's steps are executed after it started: the bound lets PostgreSQL skip older partitions.
    steps = (StepRun.objects.filter(run_id=run.pk, executed_at__gte=run.started_at)
             .order_by("executed_at", "id").values_list("node_key", "exited_via_port_key"))
    path_nodes, path_edges = set(), set()
    for node_key, port in steps:
        path_nodes.add(node_key)
        if port:
            path_edges.add((node_key, port))
    graph = run.automation.graph or {}
    goto_targets = {n.get("key") for n in graph.get("nodes") or []
                    if isinstance(n, dict) and n.get("kind") == "goto" and n.get("key") in path_nodes}
    path_edges |= {(key, "goto") for key in goto_targets}
    picture = svg.GraphPicture(path_nodes=path_nodes, path_edges=path_edges, current_node=run.current_node_key,
                               invalid_nodes={i.get("node_key") for i in run.automation.graph_errors or []})
    return format_html(
        '<div class="relay-run-path"><p>Blue: the nodes this run visited and the ports it took; orange border: '
        "its current node ({}). Drawn on the automation's graph as it is now.</p>{}</div>",
        run.current_node_key or "none", svg.graph_svg(graph, picture, label=f"Path of run {run.pk}"))


class AutomationInsightsAdminMixin:
    """For AutomationAdmin: an "Insights" fieldset after "Graph"."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._insights_period = request.GET.get("period")  # readonly fields only get the object
        return obj

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return _with_fieldset(fieldsets, "Insights", INSIGHTS_FIELD, after="Graph") if obj else fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), INSIGHTS_FIELD)

    @admin.display(description="Insights")
    def insights_pictures(self, obj):
        return automation_pictures(obj, getattr(obj, "_insights_period", None)) if obj and obj.pk else "-"


class RunPathAdminMixin:
    """For AutomationRunAdmin: a "Path through the graph" fieldset after the run's fields."""

    def get_fieldsets(self, request, obj=None):
        return _with_fieldset(super().get_fieldsets(request, obj), "Path through the graph", PATH_FIELD)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), PATH_FIELD)

    @admin.display(description="Path")
    def path_picture(self, obj):
        return run_path_picture(obj) if obj and obj.pk else "-"
