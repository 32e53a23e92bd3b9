"""Admin for runs (stop action, step timeline), scheduled jobs and inbound events."""
