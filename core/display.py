"""How pages write values they read as plain columns (not through template filters)."""

from django.utils import timezone


def local_minute(moment) -> str:
    """`moment` in the current (the organisation's) time zone as "YYYY-MM-DD HH:MM", as the
    templates' `|date:"Y-m-d H:i"` writes it; "" for None."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""
