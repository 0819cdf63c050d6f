from django.urls import path

from . import partner_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("work/", views.my_work, name="my_work"),
    path("cases/", views.case_list, name="case_list"),
    path("cases/<int:pk>/", views.case_detail, name="case_detail"),
    path("cases/<int:pk>/steps/<int:step_number>/", views.complete_step, name="complete_step"),
    path("cases/<int:pk>/withdraw/", views.withdraw, name="withdraw_case"),
    path("cases/<int:pk>/partner-portal/", views.correct_portal, name="correct_portal"),
    path("cases/<int:pk>/record.zip", views.case_record_export, name="case_record_export"),
    path("evidence/<int:pk>/", views.evidence_download, name="evidence_download"),
    path("partners/", partner_views.partner_list, name="partner_list"),
    path("partners/<int:pk>/", partner_views.partner_detail, name="partner_detail"),
    path("partners/<int:partner_pk>/offboard/", views.start_offboarding, name="start_offboarding"),
    path(
        "partners/<int:partner_pk>/case-records.zip",
        views.partner_records_export,
        name="partner_records_export",
    ),
]
