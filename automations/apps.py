from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Celery autodiscovers only `automations.tasks`: register the graph-edit tasks too.
        from automations import graph_tasks  # noqa: F401

        # A contact's deletion takes its runs: their finished ones leave the insights rollup with them.
        from automations.insights import signals  # noqa: F401

        # Contact tag/field changes start tag_applied / tag_removed / field_changed entrypoints.
        from automations.runtime import internal_events  # noqa: F401
