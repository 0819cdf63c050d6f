"""The business calendar and the deadline rules, as tables.

Every expected value below was worked out by hand from the spec's rules, for the
organisation's calendar America/Los_Angeles, US federal holidays (observed), cut-off 17:00:

- a business day is Monday-Friday and not a (observed) holiday;
- something that happens before the cut-off on a business day is handled that day;
  at or after the cut-off, or on a weekend or holiday, on the next business day;
- "same business day" is due at the cut-off of the day it is handled on; "end of 1st business
  day after" at the cut-off of the business day after that; "notice + 30 calendar days" at
  the end (local midnight) of the calendar day notice date + 30, weekends and holidays
  included.

2026 facts used: Independence Day, Saturday 07-04, is observed Friday 07-03; Veterans Day
Wednesday 11-11; Thanksgiving Thursday 11-26; DST starts Sunday 03-08 (PST UTC-8 -> PDT UTC-7)
and ends Sunday 11-01 (PDT -> PST). So 17:00 PDT is 00:00 UTC the next day and 17:00 PST is
01:00 UTC the next day; local midnight is 07:00 UTC in PDT and 08:00 UTC in PST.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from offboarding.calendar import BusinessCalendar
from offboarding.deadlines import due_at, remind_at
from offboarding.process import STEP_BY_NUMBER

LA = ZoneInfo("America/Los_Angeles")
ORG = {
    "ORG_TIME_ZONE": "America/Los_Angeles",
    "ORG_HOLIDAY_COUNTRY": "US",
    "ORG_HOLIDAY_SUBDIVISION": None,
    "ORG_BUSINESS_DAY_CUTOFF": "17:00",
}


def local(y, mo, d, h=0, mi=0, fold=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=LA, fold=fold)


def utc(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cal():
    return BusinessCalendar(
        time_zone="America/Los_Angeles", country="US", subdivision=None, cutoff="17:00"
    )


def assert_utc(value, expected):
    assert value == expected, f"{value} ({value.astimezone(LA)} local) != {expected}"
    assert value.utcoffset() == dt.timedelta(0), f"{value!r} is not stored in UTC"


# (activation, same business day -> due, first business day after -> due)
ACTIVATIONS = [
    # A business day: Tuesday 2026-04-14 (PDT). Handled Tue before 17:00, else Wed.
    pytest.param(local(2026, 4, 14, 0, 1), utc(2026, 4, 15), utc(2026, 4, 16), id="tue-00:01"),
    pytest.param(local(2026, 4, 14, 16, 59), utc(2026, 4, 15), utc(2026, 4, 16), id="tue-16:59"),
    pytest.param(local(2026, 4, 14, 17, 0), utc(2026, 4, 16), utc(2026, 4, 17), id="tue-17:00"),
    pytest.param(local(2026, 4, 14, 17, 1), utc(2026, 4, 16), utc(2026, 4, 17), id="tue-17:01"),
    pytest.param(local(2026, 4, 14, 23, 59), utc(2026, 4, 16), utc(2026, 4, 17), id="tue-23:59"),
    # A Friday: 2026-04-17. After the cut-off it is Monday's work; the day after is Tuesday.
    pytest.param(local(2026, 4, 17, 0, 1), utc(2026, 4, 18), utc(2026, 4, 21), id="fri-00:01"),
    pytest.param(local(2026, 4, 17, 16, 59), utc(2026, 4, 18), utc(2026, 4, 21), id="fri-16:59"),
    pytest.param(local(2026, 4, 17, 17, 1), utc(2026, 4, 21), utc(2026, 4, 22), id="fri-17:01"),
    pytest.param(local(2026, 4, 17, 23, 59), utc(2026, 4, 21), utc(2026, 4, 22), id="fri-23:59"),
    # A Saturday: 2026-04-18. Any time: Monday's work.
    pytest.param(local(2026, 4, 18, 0, 1), utc(2026, 4, 21), utc(2026, 4, 22), id="sat-00:01"),
    pytest.param(local(2026, 4, 18, 16, 59), utc(2026, 4, 21), utc(2026, 4, 22), id="sat-16:59"),
    pytest.param(local(2026, 4, 18, 17, 1), utc(2026, 4, 21), utc(2026, 4, 22), id="sat-17:01"),
    pytest.param(local(2026, 4, 18, 23, 59), utc(2026, 4, 21), utc(2026, 4, 22), id="sat-23:59"),
    pytest.param(local(2026, 4, 19, 10, 0), utc(2026, 4, 21), utc(2026, 4, 22), id="sun-10:00"),
    # The moment is given in UTC: its local time decides (16:30 PDT Tue; 16:00 PDT Fri).
    pytest.param(utc(2026, 4, 14, 23, 30), utc(2026, 4, 15), utc(2026, 4, 16), id="utc-tue"),
    pytest.param(utc(2026, 4, 17, 23, 0), utc(2026, 4, 18), utc(2026, 4, 21), id="utc-fri"),
    # Observed holiday: Friday 2026-07-03 (Independence Day falls on Saturday 07-04).
    pytest.param(local(2026, 7, 2, 16, 59), utc(2026, 7, 3), utc(2026, 7, 7), id="jul02-16:59"),
    pytest.param(local(2026, 7, 2, 17, 1), utc(2026, 7, 7), utc(2026, 7, 8), id="jul02-17:01"),
    pytest.param(local(2026, 7, 2, 23, 59), utc(2026, 7, 7), utc(2026, 7, 8), id="jul02-23:59"),
    pytest.param(local(2026, 7, 3, 9, 0), utc(2026, 7, 7), utc(2026, 7, 8), id="jul03-holiday"),
    pytest.param(local(2026, 7, 4, 12, 0), utc(2026, 7, 7), utc(2026, 7, 8), id="jul04-sat"),
    # Spring forward (Sun 03-08): Friday in PST, Monday and Tuesday in PDT.
    pytest.param(local(2026, 3, 6, 16, 59), utc(2026, 3, 7, 1), utc(2026, 3, 10), id="dst-on-fri"),
    pytest.param(local(2026, 3, 6, 17, 1), utc(2026, 3, 10), utc(2026, 3, 11), id="dst-on-fri-pm"),
    pytest.param(local(2026, 3, 7, 10, 0), utc(2026, 3, 10), utc(2026, 3, 11), id="dst-on-sat"),
    pytest.param(local(2026, 3, 8, 3, 30), utc(2026, 3, 10), utc(2026, 3, 11), id="dst-on-sun"),
    # Fall back (Sun 11-01): Friday in PDT, Monday and Tuesday in PST.
    pytest.param(local(2026, 10, 30, 16, 59), utc(2026, 10, 31), utc(2026, 11, 3, 1), id="dst-off"),
    pytest.param(
        local(2026, 10, 30, 17, 1), utc(2026, 11, 3, 1), utc(2026, 11, 4, 1), id="dst-off-pm"
    ),
    pytest.param(
        local(2026, 11, 1, 1, 30), utc(2026, 11, 3, 1), utc(2026, 11, 4, 1), id="dst-off-sun"
    ),
    # Weekday holidays: Veterans Day (Wed 11-11) and Thanksgiving (Thu 11-26).
    pytest.param(
        local(2026, 11, 10, 17, 1), utc(2026, 11, 13, 1), utc(2026, 11, 14, 1), id="veterans"
    ),
    pytest.param(
        local(2026, 11, 25, 17, 1), utc(2026, 11, 28, 1), utc(2026, 12, 1, 1), id="thanksgiving"
    ),
]


@pytest.mark.parametrize(("activated", "same_day", "first_after"), ACTIVATIONS)
def test_same_business_day(cal, activated, same_day, first_after):
    assert_utc(cal.same_business_day(activated), same_day)


@pytest.mark.parametrize(("activated", "same_day", "first_after"), ACTIVATIONS)
def test_first_business_day_after(cal, activated, same_day, first_after):
    assert_utc(cal.first_business_day_after(activated), first_after)


def test_observed_independence_day_example_from_the_brief(cal):
    due = cal.same_business_day(local(2026, 7, 2, 17, 1))
    assert due.astimezone(LA) == local(2026, 7, 6, 17, 0)
    assert due.astimezone(LA).strftime("%a %H:%M") == "Mon 17:00"


@pytest.mark.parametrize(
    ("notice", "days", "expected"),
    [
        # notice + 30 is due at the end of that local calendar day (local midnight after it).
        pytest.param(dt.date(2026, 4, 14), 30, utc(2026, 5, 15, 7), id="thu-pdt"),
        pytest.param(dt.date(2026, 4, 2), 30, utc(2026, 5, 3, 7), id="lands-on-saturday"),
        pytest.param(dt.date(2026, 6, 3), 30, utc(2026, 7, 4, 7), id="lands-on-holiday"),
        pytest.param(dt.date(2026, 1, 31), 30, utc(2026, 3, 3, 8), id="pst"),
        pytest.param(dt.date(2026, 2, 6), 30, utc(2026, 3, 9, 7), id="lands-on-spring-forward"),
        pytest.param(dt.date(2026, 2, 10), 30, utc(2026, 3, 13, 7), id="across-spring-forward"),
        pytest.param(dt.date(2026, 10, 2), 30, utc(2026, 11, 2, 8), id="lands-on-fall-back"),
        pytest.param(dt.date(2026, 10, 5), 30, utc(2026, 11, 5, 8), id="across-fall-back"),
        pytest.param(dt.date(2026, 12, 15), 30, utc(2027, 1, 15, 8), id="across-new-year"),
        pytest.param(dt.date(2026, 4, 14), 0, utc(2026, 4, 15, 7), id="zero-days"),
    ],
)
def test_calendar_days_after(cal, notice, days, expected):
    due = cal.calendar_days_after(notice, days)
    assert_utc(due, expected)
    # The whole of the last day is still in time; the next day is not.
    last_day = notice + dt.timedelta(days=days)
    assert (due - dt.timedelta(microseconds=1)).astimezone(LA).date() == last_day
    assert due.astimezone(LA).time() == dt.time(0)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 4, 14), True),  # Tuesday
        (dt.date(2026, 4, 17), True),  # Friday
        (dt.date(2026, 4, 18), False),  # Saturday
        (dt.date(2026, 4, 19), False),  # Sunday
        (dt.date(2026, 7, 2), True),  # Thursday before the observed holiday
        (dt.date(2026, 7, 3), False),  # Independence Day observed
        (dt.date(2026, 7, 4), False),  # Independence Day, a Saturday
        (dt.date(2026, 7, 6), True),  # Monday after
        (dt.date(2026, 1, 1), False),  # New Year's Day, Thursday
        (dt.date(2026, 1, 19), False),  # Martin Luther King Jr. Day
        (dt.date(2026, 2, 16), False),  # Washington's Birthday
        (dt.date(2026, 6, 19), False),  # Juneteenth, Friday
        (dt.date(2026, 11, 11), False),  # Veterans Day, Wednesday
        (dt.date(2026, 11, 26), False),  # Thanksgiving
        (dt.date(2026, 11, 27), True),  # the day after Thanksgiving is not a federal holiday
        (dt.date(2026, 12, 25), False),  # Christmas, Friday
        (dt.date(2026, 3, 8), False),  # DST starts, Sunday
        (dt.date(2026, 3, 9), True),  # Monday after
        (dt.date(2026, 11, 2), True),  # Monday after DST ends
    ],
)
def test_is_business_day(cal, day, expected):
    assert cal.is_business_day(day) is expected


@pytest.mark.parametrize(
    ("kwargs", "mentions"),
    [
        pytest.param({"country": "XX"}, ["XX"], id="unknown-country"),
        pytest.param({"subdivision": "ZZ"}, ["ZZ"], id="unknown-subdivision"),
        pytest.param({"cutoff": "5pm"}, ["5pm", "HH:MM"], id="cutoff-5pm"),
        pytest.param({"cutoff": "25:00"}, ["25:00", "HH:MM"], id="cutoff-25h"),
        pytest.param({"time_zone": "Mars/Olympus_Mons"}, ["Mars/Olympus_Mons"], id="unknown-tz"),
    ],
)
def test_bad_configuration_is_improperly_configured(kwargs, mentions):
    config = {
        "time_zone": "America/Los_Angeles",
        "country": "US",
        "subdivision": None,
        "cutoff": "17:00",
        **kwargs,
    }
    with pytest.raises(ImproperlyConfigured) as raised:
        BusinessCalendar(**config)
    for text in mentions:
        assert text in str(raised.value)


# --- deadlines.due_at and remind_at -------------------------------------------------------

FIRST_BD_STEPS = (1, 2, 3)
SAME_BD_STEPS = (4, 5, 6, 7, 10)
NOTICE_STEPS = (8, 9, 11, 12, 13)


def test_every_step_has_a_rule_in_this_table():
    assert sorted(FIRST_BD_STEPS + SAME_BD_STEPS + NOTICE_STEPS) == sorted(STEP_BY_NUMBER)


# Activated Thursday 2026-07-02 17:01 local; notice given 2026-06-10 (+30 = Fri 07-10).
@pytest.mark.parametrize(
    ("step_number", "expected"),
    [(n, utc(2026, 7, 8)) for n in FIRST_BD_STEPS]  # end of Tue 07-07
    + [(n, utc(2026, 7, 7)) for n in SAME_BD_STEPS]  # end of Mon 07-06
    + [(n, utc(2026, 7, 11, 7)) for n in NOTICE_STEPS],  # end of Fri 07-10 (midnight PDT)
)
def test_due_at_per_rule(cal, step_number, expected):
    due = due_at(
        STEP_BY_NUMBER[step_number],
        activated_at=local(2026, 7, 2, 17, 1),
        notice_date=dt.date(2026, 6, 10),
        calendar=cal,
    )
    assert_utc(due, expected)


@pytest.mark.parametrize("step_number", NOTICE_STEPS)
def test_notice_rule_without_a_notice_date_has_no_due_time(cal, step_number):
    step = STEP_BY_NUMBER[step_number]
    assert due_at(step, activated_at=local(2026, 7, 2, 9), notice_date=None, calendar=cal) is None


@override_settings(**ORG)
def test_due_at_reads_the_calendar_from_settings():
    step = STEP_BY_NUMBER[4]
    assert_utc(due_at(step, activated_at=local(2026, 7, 2, 17, 1)), utc(2026, 7, 7))
    with override_settings(ORG_TIME_ZONE="America/New_York", ORG_BUSINESS_DAY_CUTOFF="18:00"):
        # 17:30 in New York on Tuesday 04-14 is before an 18:00 cut-off: due 18:00 EDT = 22:00Z.
        activated = dt.datetime(2026, 4, 14, 17, 30, tzinfo=ZoneInfo("America/New_York"))
        assert_utc(due_at(step, activated_at=activated), utc(2026, 4, 14, 22))


@pytest.mark.parametrize(
    ("settings_", "step_number", "activated", "notice", "due", "remind"),
    [
        # Business-day step activated Tue 09:00: due 17:00, reminded 4 h before (13:00 PDT).
        pytest.param(
            {"REMINDER_LEAD_HOURS": 4},
            4,
            local(2026, 4, 14, 9),
            None,
            utc(2026, 4, 15),
            utc(2026, 4, 14, 20),
            id="same-bd-4h",
        ),
        pytest.param(
            {"REMINDER_LEAD_HOURS": 1},
            4,
            local(2026, 4, 14, 9),
            None,
            utc(2026, 4, 15),
            utc(2026, 4, 14, 23),
            id="same-bd-1h",
        ),
        # Activated at 15:00: four hours before 17:00 is already past: remind at activation.
        pytest.param(
            {"REMINDER_LEAD_HOURS": 4},
            4,
            local(2026, 4, 14, 15),
            None,
            utc(2026, 4, 15),
            utc(2026, 4, 14, 22),
            id="same-bd-late-activation",
        ),
        # First-BD step activated Tue 09:00: due Wed 17:00 PDT; 4 h before is Wed 13:00 PDT.
        pytest.param(
            {"REMINDER_LEAD_HOURS": 4},
            1,
            local(2026, 4, 14, 9),
            None,
            utc(2026, 4, 16),
            utc(2026, 4, 15, 20),
            id="first-bd-4h",
        ),
        # The business-day lead is in hours whatever the notice lead says.
        pytest.param(
            {"REMINDER_LEAD_HOURS": 2, "REMINDER_LEAD_DAYS_NOTICE": 10},
            2,
            local(2026, 4, 14, 9),
            None,
            utc(2026, 4, 16),
            utc(2026, 4, 15, 22),
            id="first-bd-2h",
        ),
        # Notice step: notice 04-01, due end of 05-01 (07:00Z 05-02); reminded 3 days before.
        pytest.param(
            {"REMINDER_LEAD_DAYS_NOTICE": 3},
            8,
            local(2026, 4, 14, 9),
            dt.date(2026, 4, 1),
            utc(2026, 5, 2, 7),
            utc(2026, 4, 29, 7),
            id="notice-3d",
        ),
        pytest.param(
            {"REMINDER_LEAD_DAYS_NOTICE": 10, "REMINDER_LEAD_HOURS": 1},
            13,
            local(2026, 4, 14, 9),
            dt.date(2026, 4, 1),
            utc(2026, 5, 2, 7),
            utc(2026, 4, 22, 7),
            id="notice-10d",
        ),
        # A notice step activated after its lead time began (or after it fell due): at once.
        pytest.param(
            {"REMINDER_LEAD_DAYS_NOTICE": 3},
            12,
            local(2026, 4, 30, 9),
            dt.date(2026, 4, 1),
            utc(2026, 5, 2, 7),
            utc(2026, 4, 30, 16),
            id="notice-late-activation",
        ),
        pytest.param(
            {"REMINDER_LEAD_DAYS_NOTICE": 3},
            9,
            local(2026, 4, 14, 9),
            dt.date(2026, 3, 1),
            utc(2026, 4, 1, 7),
            utc(2026, 4, 14, 16),
            id="notice-already-overdue",
        ),
    ],
)
def test_remind_at(settings_, step_number, activated, notice, due, remind):
    step = STEP_BY_NUMBER[step_number]
    with override_settings(**ORG, **settings_):
        computed_due = due_at(step, activated_at=activated, notice_date=notice)
        assert_utc(computed_due, due)
        reminder = remind_at(step, computed_due, activated)
    assert reminder == remind, f"{reminder.astimezone(LA)} local"
    assert reminder >= activated, "never reminded before the step is active"


def test_no_due_time_means_no_reminder():
    assert remind_at(STEP_BY_NUMBER[8], None, local(2026, 4, 14, 9)) is None


# The working week is the configured country's own. Israel rests Friday and Saturday:
# 2026-12-04 is a Friday, 12-05 a Saturday, 12-06 a Sunday (a working day there). Hanukkah
# (12-05..12-12 in 2026) is not a public holiday in the calendar, so it does not count.
@pytest.fixture(scope="module")
def israel():
    return BusinessCalendar(
        time_zone="Asia/Jerusalem", country="IL", subdivision=None, cutoff="17:00"
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 12, 3), True),  # Thursday
        (dt.date(2026, 12, 4), False),  # Friday: weekend in IL
        (dt.date(2026, 12, 5), False),  # Saturday
        (dt.date(2026, 12, 6), True),  # Sunday: a working day in IL
        (dt.date(2026, 12, 7), True),  # Monday
    ],
)
def test_working_week_comes_from_the_country_calendar(israel, day, expected):
    assert israel.is_business_day(day) is expected


def test_friday_saturday_weekend_moves_a_deadline_to_sunday(israel):
    jerusalem = ZoneInfo("Asia/Jerusalem")
    thursday_evening = dt.datetime(2026, 12, 3, 18, 0, tzinfo=jerusalem)
    # After Thursday's cut-off: handled on Sunday, so "same business day" is Sunday 17:00.
    assert israel.same_business_day(thursday_evening) == dt.datetime(
        2026, 12, 6, 17, 0, tzinfo=jerusalem
    )
    # First business day after Thursday morning is Sunday, not Friday.
    thursday_morning = dt.datetime(2026, 12, 3, 9, 0, tzinfo=jerusalem)
    assert israel.first_business_day_after(thursday_morning) == dt.datetime(
        2026, 12, 6, 17, 0, tzinfo=jerusalem
    )
