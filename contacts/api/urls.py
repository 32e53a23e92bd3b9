from django.urls import path

from contacts.api import controls, views

urlpatterns = [
    path("social-accounts", views.SocialAccountListView.as_view()),
    path("social-accounts/<str:pk>", views.SocialAccountDetailView.as_view()),
    path("social-accounts/<str:pk>/verify", views.SocialAccountVerifyView.as_view()),
    path("contacts", views.ContactListView.as_view()),
    path("contacts/<str:pk>", views.ContactDetailView.as_view()),
    path("conversations", views.ConversationListView.as_view()),
    path("conversations/<str:pk>", views.ConversationDetailView.as_view()),
    path("conversations/<str:pk>/messages", views.ConversationMessagesView.as_view()),
    path("contacts/<str:pk>/automation-controls", controls.ContactControlsView.as_view()),
    path("contacts/<str:pk>/automation-pause", controls.ContactPauseView.as_view()),
    path("contacts/<str:pk>/automation-resume", controls.ContactResumeView.as_view()),
]
