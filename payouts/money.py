"""Money is a Decimal with two places and a currency code. Floats are refused everywhere.

Every ledger service checks an amount with `checked_amount` at its edge: positive, within
the column (14 digits, 2 of them decimals), and in the currency's minor unit, which comes
from Babel's currency data (ISO 4217 via CLDR): no fraction of a yen, cents of a dollar.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models

CENT = Decimal("0.01")
LEDGER_PLACES = 2
LEDGER_DIGITS = 14
LARGEST_AMOUNT = Decimal(10) ** (LEDGER_DIGITS - LEDGER_PLACES) - CENT


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


def minor_units(code: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD."""
    return get_currency_precision(code)


def check_currencies(codes) -> tuple[str, ...]:
    """The configured currencies, each one ISO 4217 and one the ledger's cents can hold."""
    known = list_currencies()
    for code in codes:
        if code not in known:
            raise ImproperlyConfigured(f"PARTNEROPS_CURRENCIES: {code!r} is not an ISO 4217 code.")
        if minor_units(code) > LEDGER_PLACES:
            raise ImproperlyConfigured(
                f"PARTNEROPS_CURRENCIES: {code} has {minor_units(code)} decimal places; the "
                f"ledger holds {LEDGER_PLACES}, so it cannot hold {code} exactly."
            )
    return tuple(codes)


def supported_currencies() -> tuple[str, ...]:
    return check_currencies(settings.PARTNEROPS_CURRENCIES)


def checked_amount(value, currency: str) -> Decimal:
    """`value` as a ledger amount in `currency`, or a ValidationError saying what is wrong."""
    validate_currency(currency)
    amount = to_money(value)
    if amount <= 0:
        raise ValidationError(f"The amount must be positive, not {amount}.")
    if amount > LARGEST_AMOUNT:
        raise ValidationError(
            f"{amount} {currency} is more than the ledger holds (at most {LARGEST_AMOUNT:,})."
        )
    places = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        unit = "no minor unit: use whole amounts" if places == 0 else f"{places} decimal places"
        raise ValidationError(f"{currency} has {unit}; {amount} is not an amount in {currency}.")
    return amount


def validate_currency(code: str) -> None:
    if code not in supported_currencies():
        raise ValidationError(
            f"{code!r} is not a supported currency code; use one of "
            f"{', '.join(supported_currencies())}."
        )
