"""Admin registrations live in two modules: graph-side (automations, entrypoints, bindings) and run-side
(runs, step timeline, scheduled jobs, inbound events)."""

from automations import admin_graph, admin_inbound, admin_jobs, admin_runs  # noqa: F401
