"""Graph-side routes: automations, their graph and lifecycle actions, entrypoints, bindings."""

from django.urls import path

from automations.api import automations, bindings, entrypoints

urlpatterns = [
    path("automations", automations.AutomationListView.as_view()),
    path("automations/<str:pk>", automations.AutomationDetailView.as_view()),
    path("automations/<str:pk>/graph", automations.AutomationGraphView.as_view()),
    path("automations/<str:pk>/activate", automations.AutomationActionView.as_view(action="activate")),
    path("automations/<str:pk>/pause", automations.AutomationActionView.as_view(action="pause")),
    path("automations/<str:pk>/archive", automations.AutomationActionView.as_view(action="archive")),
    path("automations/<str:pk>/entrypoints", entrypoints.AutomationEntrypointsView.as_view()),
    path("automation-entrypoints/<str:pk>", entrypoints.EntrypointDetailView.as_view()),
    path("automation-entrypoints/<str:pk>/rotate-secret", entrypoints.EntrypointRotateSecretView.as_view()),
    path("automation-bindings", bindings.BindingListView.as_view()),
    path("automation-bindings/<str:pk>", bindings.BindingDetailView.as_view()),
]
