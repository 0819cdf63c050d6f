"""The benchmark's URLconf (partnerops.settings.bench): the product's URLs and the floor page."""

from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/floor/", views.floor, name="bench_floor"),
    path("", include("partnerops.urls")),
]
