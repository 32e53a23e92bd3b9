"""Run-side routes: enrollment, simulation, run inspection and stop."""

from django.urls import path

from automations.api import runs

urlpatterns = [
    path("automations/<str:pk>/runs", runs.AutomationRunsView.as_view()),
    path("automations/<str:pk>/enroll", runs.AutomationEnrollView.as_view()),
    path("automations/<str:pk>/simulate", runs.AutomationSimulateView.as_view()),
    path("automation-runs/<str:pk>", runs.RunDetailView.as_view()),
    path("automation-runs/<str:pk>/steps", runs.RunStepsView.as_view()),
    path("automation-runs/<str:pk>/stop", runs.RunStopView.as_view()),
]
