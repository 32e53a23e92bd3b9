"""Admin registrations live in three modules: graph-side (automations, entrypoints, bindings), run-side
(runs, step timeline, scheduled jobs, inbound events) and raw platform webhook deliveries."""

from automations import admin_deliveries, admin_graph, admin_inbound, admin_jobs, admin_runs  # noqa: F401
