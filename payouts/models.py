"""The partner ledger: what the company owes a partner, and what it has paid.

Commissions are earned; open orders may still earn; payouts are what is owed and move
open -> pending -> paid, or are voided with a reason; payments settle payouts. Money is a
Decimal with a currency code, never a float.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from partners.models import Partner

from .money import MoneyField, validate_currency


class CommissionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PAYOUT = "in_payout", "In a payout"
    VOID = "void", "Void"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


class PayoutStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


OUTSTANDING_STATUSES = (PayoutStatus.OPEN, PayoutStatus.PENDING)


class PaymentMethod(models.TextChoices):
    ACH = "ach", "ACH transfer"
    WIRE = "wire", "Wire transfer"
    CHECK = "check", "Cheque"
    CARD = "card", "Card / payment platform"


class OverrideKind(models.TextChoices):
    PAYMENT = "payment", "Payment"
    COMMISSION = "commission", "Commission"
    PAYOUT = "payout", "Payout"


class OverrideStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second CAR user"
    APPROVED = "approved", "Approved, not used yet"
    USED = "used", "Used"
    REFUSED = "refused", "Refused"


class GuardOverride(models.Model):
    """Permission, asked by one CAR user and approved by another (Decision D's four eyes), to
    record one payment or accrual for a partner after their offboard date.

    It covers exactly what was asked: the kind, the payout (for a payment), the amount and
    currency; it is used once. Written only by `offboarding.money.overrides`.
    """

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="guard_overrides")
    case = models.ForeignKey(
        "offboarding.Case",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="guard_overrides",
    )
    kind = models.CharField(
        max_length=12, choices=OverrideKind.choices, default=OverrideKind.PAYMENT
    )
    payout = models.ForeignKey(
        "Payout", on_delete=models.PROTECT, null=True, blank=True, related_name="guard_overrides"
    )
    amount = MoneyField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    reference = models.CharField(
        max_length=80, blank=True, help_text="The commission's or payout's reference (accruals)."
    )
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="requested_guard_overrides",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=10, choices=OverrideStatus.choices, default=OverrideStatus.PENDING
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="guard_overrides",
        null=True,
        blank=True,
    )
    refused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="refused_guard_overrides",
        null=True,
        blank=True,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    refusal_reason = models.TextField(blank=True)
    # Granted by one person, before overrides needed a second CAR user (migration 0007).
    single_approval = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="override_has_reason"),
            # Maker-checker: an approval is never the requester's own.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True)
                | ~Q(approved_by=F("requested_by"))
                | Q(single_approval=True),
                name="override_four_eyes",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "refused"]) | Q(approved_by__isnull=False),
                name="override_used_only_when_approved",
            ),
        ]

    def __str__(self):
        return f"Override for {self.partner}: {self.describe()}"

    def describe(self) -> str:
        what = self.get_kind_display().lower()
        target = self.payout.reference if self.payout_id else self.reference
        amount = f" of {self.amount} {self.currency}" if self.amount is not None else ""
        return f"{what}{amount}{f' on {target}' if target else ''} after the offboard date"


class LedgerLine(models.Model):
    """What commissions, orders and payouts share: a partner, an amount, a currency."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    created_at = models.DateTimeField(auto_now_add=True)
    override = models.ForeignKey(
        GuardOverride, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


class Commission(LedgerLine):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="commissions")
    source = models.CharField(max_length=40, help_text="The system the line came from.")
    reference = models.CharField(max_length=80)
    period_start = models.DateField()
    period_end = models.DateField()
    earned_on = models.DateField()
    status = models.CharField(
        max_length=10, choices=CommissionStatus.choices, default=CommissionStatus.OPEN
    )
    payout = models.ForeignKey(
        "Payout", on_delete=models.PROTECT, null=True, blank=True, related_name="commissions"
    )

    class Meta:
        ordering = ["earned_on", "reference"]
        indexes = [models.Index(fields=["partner", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["source", "reference"], name="commission_unique_ref"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="commission_amount_positive"),
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")), name="commission_period_order"
            ),
        ]

    def __str__(self):
        return f"{self.source}:{self.reference} {self.amount} {self.currency}"


class Order(LedgerLine):
    """An order of the partner's client still open: commission may yet be earned on it."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="orders")
    reference = models.CharField(max_length=80, unique=True)
    ordered_on = models.DateField()
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    resolution_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["ordered_on", "reference"]
        indexes = [models.Index(fields=["partner", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="order_amount_positive"),
        ]

    def __str__(self):
        return f"Order {self.reference} {self.amount} {self.currency}"


class Payout(LedgerLine):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payouts")
    reference = models.CharField(max_length=80, unique=True)
    description = models.CharField(max_length=200)
    earned_on = models.DateField()
    status = models.CharField(
        max_length=10, choices=PayoutStatus.choices, default=PayoutStatus.OPEN
    )
    paid_amount = MoneyField(default=0)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["earned_on", "reference"]
        indexes = [models.Index(fields=["partner", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            # Never overpaid, and only a fully paid payout is "paid".
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0, paid_amount__lte=F("amount")),
                name="payout_never_overpaid",
            ),
            models.CheckConstraint(
                condition=~Q(status=PayoutStatus.PAID) | Q(paid_amount=F("amount")),
                name="payout_paid_means_fully_paid",
            ),
            models.CheckConstraint(
                condition=~Q(status=PayoutStatus.VOID) | ~Q(void_reason=""),
                name="payout_void_has_reason",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.amount} {self.currency}"

    @property
    def remaining(self):
        return self.amount - self.paid_amount


class Payment(models.Model):
    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    paid_on = models.DateField()
    method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    payment_system = models.CharField(max_length=40, default="AP")
    reference = models.CharField(max_length=80, help_text="The payment system's reference.")
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True)
    # What the request asked for (offboarding.money.idempotency): a key replayed with other
    # arguments is refused. A batch's payments share the batch's own key.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="", db_default="")
    batch_key = models.UUIDField(null=True, blank=True, db_index=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recorded_payments"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    case = models.ForeignKey(
        "offboarding.Case", on_delete=models.PROTECT, related_name="payments", null=True, blank=True
    )
    override = models.ForeignKey(
        GuardOverride, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    # Dated after the partner's offboard date (only possible with an override, or when the
    # offboard date was set after the payment): kept on the row so the exceptions report
    # reads a small partial index instead of joining every payment to its partner.
    after_offboard_date = models.BooleanField(default=False, db_default=False)
    # Set when the daily check has told CAR and the manager about such a payment.
    exception_reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["paid_on", "pk"]
        indexes = [
            models.Index(fields=["paid_on"]),
            # The case page's newest payments: read in order, only as many as it shows.
            models.Index(fields=["case", "-paid_on", "-id"], name="payment_case_newest_idx"),
            models.Index(
                fields=["-paid_on", "-id"],
                condition=Q(after_offboard_date=True),
                name="payment_after_offboard_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["payment_system", "reference"], name="payment_unique_reference"
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.amount} {self.currency}"
