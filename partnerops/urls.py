from django.conf import settings
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
    path("", include("partners.urls")),
    path("", include("payouts.urls")),
    path("", include("notifications.urls")),
]

if settings.BENCH_FLOOR:  # `make bench` only: the page every other page is compared with
    from partnerops import bench

    urlpatterns.append(path("bench/floor/", bench.floor, name="bench_floor"))
