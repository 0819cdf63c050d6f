"""Money is a Decimal with two places and a currency code. Floats are refused everywhere."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

CENT = Decimal("0.01")


def to_money(value) -> Decimal:
    """A Decimal amount from a Decimal, an int or a string; a float is a programming error."""
    if isinstance(value, float):
        raise TypeError("Money is never a float: pass a Decimal or a string such as '12.50'.")
    if isinstance(value, bool):
        raise TypeError("Money is not a boolean.")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(f"{value!r} is not an amount; write it like 1234.50.") from None
    if not amount.is_finite():
        raise ValidationError(f"{value!r} is not an amount; write it like 1234.50.")
    try:
        in_cents = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than a Decimal holds in cents
        raise ValidationError(f"{value} is too large to be an amount.") from None
    if amount != in_cents:
        raise ValidationError(f"{value} has more than two decimal places.")
    return in_cents


class MoneyField(models.DecimalField):
    """A DecimalField(14, 2) that refuses floats instead of converting them."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if isinstance(value, float):
            raise ValidationError("Money is never a float.", code="float")
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, float):
            raise TypeError("Money is never a float: pass a Decimal.")
        if isinstance(value, Decimal) and value.is_finite() and value != value.quantize(CENT):
            raise ValueError(f"{value} has more than two decimal places; money is in cents.")
        return super().get_prep_value(value)


def supported_currencies() -> tuple[str, ...]:
    return tuple(settings.PARTNEROPS_CURRENCIES)


def validate_currency(code: str) -> None:
    if code not in supported_currencies():
        raise ValidationError(
            f"{code!r} is not a supported currency code; use one of "
            f"{', '.join(supported_currencies())}."
        )
