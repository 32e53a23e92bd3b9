import logging

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "relay.core"
    label = "core"
    verbose_name = "Relay core"

    def ready(self):
        from django.core.signals import request_finished

        from relay.observability import logs

        logs.install_record_factory()
        logging.captureWarnings(True)  # Python warnings as log lines in the configured format
        request_finished.connect(logs.clear_on_request_finished, dispatch_uid="relay.logs.clear")
