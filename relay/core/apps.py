from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "relay.core"
    label = "core"
    verbose_name = "Relay core"
