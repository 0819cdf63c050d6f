"""Template filters for ledger figures: {% load ledger %}."""

from django import template

register = template.Library()


@register.filter
def in_currency(amount, currency) -> str:
    """`amount` followed by its currency ("200.00 USD"), as every money cell writes it.

    Plain text: the template escapes it like any other value."""
    return f"{amount} {currency}"
