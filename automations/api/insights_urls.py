"""Insights routes. `automations/insights` must be matched before `automations/<pk>`."""

from django.urls import path

from automations.api.insights import InsightsView
from automations.models import Automation, Binding, Entrypoint

insights = InsightsView.as_view

urlpatterns = [
    path("automations/insights", insights(model=None, operation_name="organization")),
    path("automations/<str:pk>/insights", insights(model=Automation, operation_name="automation")),
    path("automation-entrypoints/<str:pk>/insights", insights(model=Entrypoint, operation_name="entrypoint")),
    path("automation-bindings/<str:pk>/insights", insights(model=Binding, operation_name="binding")),
]
