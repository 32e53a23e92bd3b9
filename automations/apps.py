from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Contact tag/field changes start tag_applied / tag_removed / field_changed entrypoints.
        from automations.runtime import internal_events  # noqa: F401
