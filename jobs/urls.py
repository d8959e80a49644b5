"""Engine endpoints outside any workspace: webhooks and signed files (token-authenticated)."""

from django.urls import path

from jobs import views

urlpatterns = [
    path("hooks/<str:token>/", views.webhook, name="provider_webhook"),
    path("files/<str:token>/", views.public_file, name="public_file"),
]
