from django.urls import include, path

urlpatterns = [
    path("openai/v1/", include("studio.gateways.openai")),
    path("relay/v1/", include("studio.gateways.relay")),
]
