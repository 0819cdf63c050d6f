from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from health.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("accounts.urls")),  # the second factor: enrol, verify
    path("", include("offboarding.urls")),
    path("", include("offboarding.money.urls")),
    path("", include("notifications.urls")),
]
