from django.urls import path

from contacts.api import views

urlpatterns = [
    path("social-accounts", views.SocialAccountListView.as_view()),
    path("social-accounts/<str:pk>", views.SocialAccountDetailView.as_view()),
    path("contacts", views.ContactListView.as_view()),
    path("contacts/<str:pk>", views.ContactDetailView.as_view()),
    path("conversations", views.ConversationListView.as_view()),
    path("conversations/<str:pk>", views.ConversationDetailView.as_view()),
    path("conversations/<str:pk>/messages", views.ConversationMessagesView.as_view()),
]
