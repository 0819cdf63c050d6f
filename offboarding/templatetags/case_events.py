"""Reading an event's stored data as a person would: labels, not field names and codes.

The case page's history calls `field_label` and `field_value` in Python (see
`offboarding.selectors.case_history`); the filters are the same functions for templates.
The model's fields do not change while the process runs, so their lookups are kept.
"""

from functools import lru_cache

from django import template
from django.core.exceptions import FieldDoesNotExist

from offboarding.models import Case
from offboarding.process import CaseState

register = template.Library()

STATE_LABELS = dict(CaseState.choices)


@lru_cache(maxsize=256)
def _case_field(key: str):
    try:
        return Case._meta.get_field(key)
    except FieldDoesNotExist:
        return None


@lru_cache(maxsize=256)
def _choices(key: str) -> dict | None:
    field = _case_field(key)
    return None if field is None else dict(field.flatchoices)


@register.filter
def field_label(key: str) -> str:
    field = _case_field(key)
    if field is None:
        return key.replace("_", " ").capitalize()
    return str(field.verbose_name).capitalize()


@register.filter
def field_value(value, key: str):
    if isinstance(value, dict) and "label" in value:
        return value["label"]
    if isinstance(value, dict) and "totals" in value:
        # The balance (step 7) or the statement (step 9) kept with the decision: its totals.
        totals = value["totals"]
        parts = [
            f"{amounts['remaining'] if isinstance(amounts, dict) else amounts} {currency}"
            for currency, amounts in totals.items()
        ]
        return ("open " if key == "open_balance" else "remaining ") + (", ".join(parts) or "0")
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    choices = _choices(key)
    if choices is None:
        return value
    try:
        return choices.get(value, value)
    except TypeError:  # an unhashable value (a dict) is shown as it is
        return value


@register.filter
def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)
