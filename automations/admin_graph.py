"""Admin for automations, entrypoints and bindings."""
