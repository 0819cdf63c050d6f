"""The organisation's business calendar: time zone, holidays and the business-day cut-off.

Deadlines are computed in the organisation's local time and stored in UTC.
"""

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _calendar(country: str, subdivision: str | None):
    try:
        return holidays.country_holidays(country, subdiv=subdivision, observed=True)
    except NotImplementedError as exc:
        raise ImproperlyConfigured(
            f"Holiday calendar {country}/{subdivision} is not known to the holidays package."
        ) from exc


class BusinessCalendar:
    def __init__(self, *, time_zone: str, country: str, subdivision: str | None, cutoff: str):
        try:
            self.tz = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ImproperlyConfigured(f"Time zone {time_zone!r} is not known.") from None
        self.holidays = _calendar(country, subdivision)
        try:
            self.cutoff = dt.time.fromisoformat(cutoff)
        except ValueError:
            raise ImproperlyConfigured(f"Business-day cut-off {cutoff!r} is not HH:MM.") from None

    @classmethod
    def from_settings(cls) -> "BusinessCalendar":
        return cls(
            time_zone=settings.ORG_TIME_ZONE,
            country=settings.ORG_HOLIDAY_COUNTRY,
            subdivision=settings.ORG_HOLIDAY_SUBDIVISION,
            cutoff=settings.ORG_BUSINESS_DAY_CUTOFF,
        )

    def local_date(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.tz).date()

    def is_business_day(self, day: dt.date) -> bool:
        """A working day of the configured country: its own weekend (Friday and Saturday in
        IL or SA, Saturday and Sunday in most) and its holidays, as `holidays` knows them."""
        return self.holidays.is_working_day(day)

    def next_business_day(self, day: dt.date) -> dt.date:
        day += dt.timedelta(days=1)
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day

    def close_of(self, day: dt.date) -> dt.datetime:
        """The cut-off on `day`, local time, as an aware datetime."""
        return dt.datetime.combine(day, self.cutoff, tzinfo=self.tz)

    def end_of_calendar_day(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.tz)

    def effective_business_day(self, moment: dt.datetime) -> dt.date:
        """The business day on which something that happens at `moment` is handled.

        After the cut-off, or on a weekend or holiday, that is the next business day.
        """
        local = moment.astimezone(self.tz)
        if self.is_business_day(local.date()) and local.time() < self.cutoff:
            return local.date()
        return self.next_business_day(local.date())

    def same_business_day(self, moment: dt.datetime) -> dt.datetime:
        return self.close_of(self.effective_business_day(moment)).astimezone(dt.UTC)

    def first_business_day_after(self, moment: dt.datetime) -> dt.datetime:
        day = self.next_business_day(self.effective_business_day(moment))
        return self.close_of(day).astimezone(dt.UTC)

    def calendar_days_after(self, day: dt.date, days: int) -> dt.datetime:
        return self.end_of_calendar_day(day + dt.timedelta(days=days)).astimezone(dt.UTC)
