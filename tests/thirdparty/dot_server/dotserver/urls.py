from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path


def health(_request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
