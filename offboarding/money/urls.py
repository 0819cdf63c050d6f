from django.urls import path

from . import views

urlpatterns = [
    path("cases/<int:pk>/money/<slug:form_name>/", views.money_form, name="money_form"),
    path("cases/<int:pk>/payments/", views.add_payment, name="add_payment"),
    path("cases/<int:pk>/payments/in-full/", views.pay_in_full, name="pay_in_full"),
    path("cases/<int:pk>/payouts/void/", views.void_payout, name="void_payout"),
    path("cases/<int:pk>/orders/resolve/", views.resolve_order, name="resolve_order"),
    path(
        "cases/<int:pk>/commissions/roll-up/", views.roll_up_commissions, name="roll_up_commissions"
    ),
    path("cases/<int:pk>/statement/", views.statement, name="final_statement"),
    path("car/", views.console, name="car_console"),
    path("overrides/<int:pk>/approve/", views.approve_override, name="approve_override"),
    path("overrides/<int:pk>/refuse/", views.refuse_override, name="refuse_override"),
    path(
        "reports/payments-after-offboard/",
        views.payments_after_offboard,
        name="payments_after_offboard",
    ),
]
