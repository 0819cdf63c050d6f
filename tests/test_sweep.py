"""The deadline sweep and the daily digest, moved through time.

Times are local (America/Los_Angeles, the organisation's calendar; cut-off 17:00, reminders
REMINDER_LEAD_HOURS=4 before a business-day step falls due). Tuesday 2026-04-14 is a plain
business day: a step activated there at 09:00 under the same-business-day rule is reminded at
13:00 and falls due at 17:00.
"""

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from notifications import services as notify
from notifications.models import (
    Delivery,
    EmailStatus,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from offboarding import services, sweep
from offboarding.demo import drive, step_data
from offboarding.digest import send_daily_digests
from offboarding.models import Case, Initiator, Reason, RequestChannel
from partners.models import Partner
from tests.factories import CaseFactory
from tests.race import race

LA = ZoneInfo("America/Los_Angeles")
TIMING = {
    "ORG_TIME_ZONE": "America/Los_Angeles",
    "ORG_HOLIDAY_COUNTRY": "US",
    "ORG_HOLIDAY_SUBDIVISION": None,
    "ORG_BUSINESS_DAY_CUTOFF": "17:00",
    "REMINDER_LEAD_HOURS": 4,
    "REMINDER_LEAD_DAYS_NOTICE": 3,
    "DIGEST_HOUR": 7,
}


def local(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=LA)


def utc(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


TUE = (2026, 4, 14)
WED = (2026, 4, 15)


@pytest.fixture(autouse=True)
def _timing():
    with override_settings(**TIMING):
        yield


def kind_rows(case, kind):
    return Notification.objects.filter(case=case, kind=kind)


def recipients(case, kind):
    return sorted(kind_rows(case, kind).values_list("recipient__username", flat=True))


def sweep_times(times):
    """Run the sweep `times` times at the current (travelled) instant."""
    results = [sweep.run() for _ in range(times)]
    return [r.reminded for r in results], [r.escalated for r in results]


# --- reminders and escalations ------------------------------------------------------------


@pytest.mark.django_db
def test_one_reminder_then_one_escalation_however_often_swept(roles):
    with time_machine.travel(local(*TUE, 9), tick=False) as traveller:
        case = CaseFactory(state="step_4", actors=roles)
        assert case.step_remind_at == utc(*TUE, 20)  # 13:00 PDT
        assert case.step_due_at == utc(*WED, 0)  # 17:00 PDT

        for hour, minute in ((9, 0), (12, 59)):
            traveller.move_to(local(*TUE, hour, minute))
            assert sweep_times(3) == ([0, 0, 0], [0, 0, 0])
        assert not kind_rows(case, NotificationKind.REMINDER).exists()

        traveller.move_to(local(*TUE, 13, 0))
        assert sweep_times(3) == ([1, 0, 0], [0, 0, 0])
        # Step 4 is the CAM's: the reminder goes to the partner's CAM only.
        assert recipients(case, NotificationKind.REMINDER) == ["cam"]
        reminder = kind_rows(case, NotificationKind.REMINDER).get()
        assert "Step 4" in reminder.title
        assert "17:00" in reminder.title

        for hour, minute in ((13, 1), (15, 0), (16, 59)):
            traveller.move_to(local(*TUE, hour, minute))
            assert sweep_times(3) == ([0, 0, 0], [0, 0, 0])

        traveller.move_to(local(*TUE, 17, 0))
        assert sweep_times(3) == ([0, 0, 0], [1, 0, 0])
        assert recipients(case, NotificationKind.ESCALATION) == ["cam", "manager"]
        assert "Overdue" in kind_rows(case, NotificationKind.ESCALATION).first().title

        for later in (
            local(*TUE, 23, 59),
            local(*WED, 9),
            local(2026, 4, 20, 9),
            local(2026, 6, 1),
        ):
            traveller.move_to(later)
            assert sweep_times(2) == ([0, 0], [0, 0])
            sweep.run(later + dt.timedelta(days=30))  # an explicit, even later "now"

    assert recipients(case, NotificationKind.REMINDER) == ["cam"]
    assert recipients(case, NotificationKind.ESCALATION) == ["cam", "manager"]
    case.refresh_from_db()
    assert case.step_reminded_at == utc(*TUE, 20)
    assert case.step_escalated_at == utc(*WED, 0)


@pytest.mark.django_db
def test_completing_the_step_resets_the_clock_for_the_next(roles):
    with time_machine.travel(local(*TUE, 9), tick=False) as traveller:
        case = CaseFactory(state="step_4", actors=roles)
        traveller.move_to(local(*TUE, 13))
        assert sweep_times(2) == ([1, 0], [0, 0])

        # Step 4 done at 14:00; step 5 (Sales Ops, same business day) starts its own clock:
        # due 17:00, and 4 h before that is already past, so it is reminded at once.
        traveller.move_to(local(*TUE, 14))
        case = drive(case, until="step_5", actors=roles)
        assert case.state == "step_5"
        case.refresh_from_db()
        assert case.step_started_at == utc(*TUE, 21)
        assert case.step_remind_at == utc(*TUE, 21)
        assert case.step_due_at == utc(*WED, 0)
        assert case.step_reminded_at is None and case.step_escalated_at is None

        assert sweep_times(3) == ([1, 0, 0], [0, 0, 0])
        step5_reminder = kind_rows(case, NotificationKind.REMINDER).get(recipient=roles["salesops"])
        assert "Step 5" in step5_reminder.title

        traveller.move_to(local(*TUE, 17))
        assert sweep_times(2) == ([0, 0], [1, 0])

        # Step 5 done late, Wednesday 09:00: step 6 is due Wednesday 17:00, reminded 13:00.
        traveller.move_to(local(*WED, 9))
        case = drive(case, until="step_6", actors=roles)
        assert sweep_times(2) == ([0, 0], [0, 0])
        traveller.move_to(local(*WED, 13))
        assert sweep_times(2) == ([1, 0], [0, 0])
        traveller.move_to(local(*WED, 17))
        assert sweep_times(2) == ([0, 0], [1, 0])

    reminders = list(
        kind_rows(case, NotificationKind.REMINDER)
        .order_by("created_at", "recipient__username")
        .values_list("recipient__username", "title")
    )
    assert [(user, re.search(r"Step \d+", title).group()) for user, title in reminders] == [
        ("cam", "Step 4"),
        ("salesops", "Step 5"),
        ("salesops", "Step 6"),
    ]
    # One escalation per step that was missed (5 and 6), each to the manager and the CAM.
    assert kind_rows(case, NotificationKind.ESCALATION).count() == 4
    assert recipients(case, NotificationKind.ESCALATION) == ["cam", "cam", "manager", "manager"]


@pytest.mark.django_db
def test_a_sweep_that_did_not_run_for_hours_catches_up_in_one_run(roles):
    with time_machine.travel(local(*TUE, 9), tick=False) as traveller:
        early = CaseFactory(state="step_4", actors=roles)  # remind 13:00, due 17:00
        traveller.move_to(local(*TUE, 14, 30))
        late = CaseFactory(state="step_4", actors=roles)  # remind 14:30, due 17:00
        traveller.move_to(local(*WED, 8))
        tomorrow = CaseFactory(state="step_4", actors=roles)  # remind Wed 13:00

        # The scheduler was down from Tuesday 09:00 to Tuesday 16:00.
        result = sweep.run(local(*TUE, 16))
        assert (result.reminded, result.escalated) == (2, 0)
        # ... and again until Wednesday 08:00.
        result = sweep.run(local(*WED, 8))
        assert (result.reminded, result.escalated) == (0, 2)
        result = sweep.run(local(*WED, 8))
        assert (result.reminded, result.escalated) == (0, 0)

    for case in (early, late):
        assert recipients(case, NotificationKind.REMINDER) == ["cam"]
        assert recipients(case, NotificationKind.ESCALATION) == ["cam", "manager"]
    assert not kind_rows(tomorrow, NotificationKind.REMINDER).exists()
    assert not kind_rows(tomorrow, NotificationKind.ESCALATION).exists()


@pytest.mark.django_db
def test_a_step_already_overdue_when_first_swept_is_escalated_without_a_reminder(roles):
    with time_machine.travel(local(*TUE, 9), tick=False) as traveller:
        case = CaseFactory(state="step_5", actors=roles)
        traveller.move_to(local(*WED, 10))
        assert sweep_times(3) == ([0, 0, 0], [1, 0, 0])
        traveller.move_to(local(2026, 4, 20, 10))
        assert sweep_times(2) == ([0, 0], [0, 0])

    assert not kind_rows(case, NotificationKind.REMINDER).exists()
    assert recipients(case, NotificationKind.ESCALATION) == ["cam", "manager"]
    escalation = kind_rows(case, NotificationKind.ESCALATION).first()
    assert "Sales Ops" in escalation.body  # who the step is waiting for


@pytest.mark.django_db
@pytest.mark.parametrize("closed_state", ["done", "withdrawn"])
def test_closed_cases_are_never_reminded_or_escalated(roles, closed_state):
    with time_machine.travel(local(*TUE, 9), tick=False) as traveller:
        closed = CaseFactory(state=closed_state, actors=roles)
        control = CaseFactory(state="step_4", actors=roles)
        assert closed.state == closed_state
        for instant in (local(*TUE, 13), local(*TUE, 17), local(2026, 6, 30, 12)):
            traveller.move_to(instant)
            sweep.run()
            sweep.run()

    assert kind_rows(control, NotificationKind.REMINDER).exists()  # the sweep did run
    assert kind_rows(control, NotificationKind.ESCALATION).exists()
    assert not kind_rows(closed, NotificationKind.REMINDER).exists()
    assert not kind_rows(closed, NotificationKind.ESCALATION).exists()
    closed.refresh_from_db()
    assert closed.step_due_at is None and closed.step_remind_at is None


# --- a rolled-back transaction sends nothing -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_step_leaves_no_notification_and_enqueues_nothing(roles, monkeypatch):
    case = CaseFactory(state="step_4", actors=roles)
    enqueued = []
    monkeypatch.setattr(notify, "enqueue_delivery", lambda ids: enqueued.append(list(ids)))
    before = set(Notification.objects.values_list("pk", flat=True))

    class Boom(Exception):
        pass

    def complete():
        return services.complete_step(
            actor=roles["cam"],
            case_id=case.pk,
            step_number=4,
            expected_state="step_4",
            data=step_data(case),
        )

    with pytest.raises(Boom), transaction.atomic():
        complete()
        # Inside the transaction the outbox row for Sales Ops exists ...
        assert Notification.objects.filter(case=case, recipient=roles["salesops"]).exists()
        raise Boom

    # ... and is gone with it; nothing was handed to the worker.
    assert set(Notification.objects.values_list("pk", flat=True)) == before
    assert enqueued == []
    case.refresh_from_db()
    assert case.state == "step_4"

    # The same call committed does write the row and enqueue it after the commit.
    complete()
    new = Notification.objects.exclude(pk__in=before)
    assert list(new.values_list("recipient__username", flat=True)) == ["salesops"]
    assert enqueued == [[new.get().pk]]


# --- the daily digest -----------------------------------------------------------------------


def _digest_setup(roles):
    """Sales Ops reads 'step assigned' in the digest, the manager 'case opened'.

    Returns (case at step 4 — the CAM's work, case at step 5 — Sales Ops' work).
    """
    NotificationPreference.objects.create(
        user=roles["salesops"], kind=NotificationKind.STEP_ASSIGNED, delivery=Delivery.DIGEST
    )
    NotificationPreference.objects.create(
        user=roles["manager"], kind=NotificationKind.CASE_OPENED, delivery=Delivery.DIGEST
    )
    at_4 = CaseFactory(state="step_4", actors=roles)
    at_5 = CaseFactory(state="step_5", actors=roles)
    return at_4, at_5


def digests(**filters):
    return Notification.objects.filter(kind=NotificationKind.DAILY_DIGEST, **filters)


def digest_count_by_user(day):
    rows = digests(digest_day=day).values_list("recipient__username", flat=True)
    return {name: list(rows).count(name) for name in rows}


@pytest.mark.django_db
def test_daily_digest_once_per_user_per_business_day_after_the_hour(roles):
    with time_machine.travel(local(2026, 4, 13, 15), tick=False) as traveller:
        at_4, at_5 = _digest_setup(roles)
        waiting = Notification.objects.get(
            recipient=roles["salesops"], kind=NotificationKind.STEP_ASSIGNED, case=at_5
        )
        assert waiting.email_status == EmailStatus.IN_DIGEST

        traveller.move_to(local(*TUE, 6, 59))
        assert send_daily_digests(local(*TUE, 6, 59)) == 0
        assert not digests().exists()

        traveller.move_to(local(*TUE, 7, 0))
        assert send_daily_digests(local(*TUE, 7, 0)) == 3
        for instant in (local(*TUE, 7, 0), local(*TUE, 7, 15), local(*TUE, 16, 45)):
            traveller.move_to(instant)
            assert send_daily_digests(instant) == 0
        # CAM (open step 4), Sales Ops (open step 5 + a waiting row), the manager (waiting rows).
        # Nobody else has anything to read: no digest.
        assert digest_count_by_user(dt.date(*TUE)) == {"cam": 1, "salesops": 1, "manager": 1}

        # Saturday, and the observed holiday Friday 2026-07-03: no digest at any hour.
        for instant in (local(2026, 4, 18, 7), local(2026, 4, 18, 12), local(2026, 7, 3, 9)):
            traveller.move_to(instant)
            assert send_daily_digests(instant) == 0

        # Wednesday is a new business day: one more each for those with open work.
        traveller.move_to(local(*WED, 8))
        assert send_daily_digests(local(*WED, 8)) == 2
        assert send_daily_digests(local(*WED, 9)) == 0
        assert digest_count_by_user(dt.date(*WED)) == {"cam": 1, "salesops": 1}

    assert digests().count() == 5
    assert set(digests().values_list("digest_day", flat=True)) == {dt.date(*TUE), dt.date(*WED)}


@pytest.mark.django_db
def test_digest_body_lists_open_steps_and_each_waiting_notification_once(roles):
    with time_machine.travel(local(2026, 4, 13, 15), tick=False) as traveller:
        at_4, at_5 = _digest_setup(roles)
        waiting = Notification.objects.get(
            recipient=roles["salesops"], kind=NotificationKind.STEP_ASSIGNED, case=at_5
        )
        traveller.move_to(local(*TUE, 7, 30))
        send_daily_digests(local(*TUE, 7, 30))

    ops_digest = digests(recipient=roles["salesops"]).get()
    lines = ops_digest.body.splitlines()
    assert [line for line in lines if waiting.title in line] == [f"- {waiting.title}"]
    assert "Step 5" in waiting.title
    # The open step, with a link to the case; not the CAM's step-4 case.
    assert f"{settings.SITE_URL}/cases/{at_5.pk}/" in ops_digest.body
    assert at_5.partner.display_name in ops_digest.body
    assert f"/cases/{at_4.pk}/" not in ops_digest.body
    assert "1 open step" in ops_digest.title
    waiting.refresh_from_db()
    assert waiting.email_status == EmailStatus.DIGESTED

    cam_digest = digests(recipient=roles["cam"]).get()
    assert f"{settings.SITE_URL}/cases/{at_4.pk}/" in cam_digest.body
    assert f"/cases/{at_5.pk}/" not in cam_digest.body

    manager_digest = digests(recipient=roles["manager"]).get()
    opened = Notification.objects.filter(
        recipient=roles["manager"], kind=NotificationKind.CASE_OPENED
    )
    assert opened.count() == 2
    for row in opened:
        assert manager_digest.body.splitlines().count(f"- {row.title}") == 1
        assert row.email_status == EmailStatus.DIGESTED
    # Only rows the user chose to read in the digest are listed and marked.
    assert not Notification.objects.filter(email_status=EmailStatus.IN_DIGEST).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_digest_runs_at_once_send_one_digest_each(roles):
    with time_machine.travel(local(2026, 4, 13, 15), tick=False):
        _digest_setup(roles)
    now = local(*TUE, 7, 30)
    with time_machine.travel(now, tick=False):
        results = race([lambda: send_daily_digests(now)] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 3
    assert digest_count_by_user(dt.date(*TUE)) == {"cam": 1, "salesops": 1, "manager": 1}
    assert not Notification.objects.filter(email_status=EmailStatus.IN_DIGEST).exists()


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_reminder_and_escalation_once(roles):
    with time_machine.travel(local(2026, 4, 13, 9), tick=False) as traveller:
        overdue = [CaseFactory(state="step_4", actors=roles) for _ in range(5)]  # due Mon 17:00
        traveller.move_to(local(*TUE, 9))
        reminding = [CaseFactory(state="step_5", actors=roles) for _ in range(5)]  # remind 13:00
        traveller.move_to(local(*TUE, 14))
        for round_ in range(3):
            results = race([sweep.run, sweep.run])
            assert not [r for r in results if isinstance(r, Exception)], results
            if round_ == 0:
                assert sum(r.escalated for r in results) == 5, results
                assert sum(r.reminded for r in results) == 5, results
            else:
                assert sum(r.escalated + r.reminded for r in results) == 0, results

    for case in overdue:
        assert recipients(case, NotificationKind.ESCALATION) == ["cam", "manager"]
        assert not kind_rows(case, NotificationKind.REMINDER).exists()
    for case in reminding:
        assert recipients(case, NotificationKind.REMINDER) == ["salesops"]
        assert not kind_rows(case, NotificationKind.ESCALATION).exists()


# --- the sweep's queries read the partial indexes ----------------------------------------------


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _explain(queryset):
    """The executed plan: its root, the index names it reads, and the buffers it touched."""
    (root,) = json.loads(queryset.explain(format="json", analyze=True, buffers=True))
    plan = root["Plan"]
    index_names = {n.get("Index Name") for n in _plan_nodes(plan)} - {None}
    pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    return plan, index_names, pages


def _bulk_cases(cam, count, *, remind_at, due_at, reminded_at=None, escalated_at=None):
    start = Partner.objects.count()
    partners = Partner.objects.bulk_create(
        Partner(
            legal_name=f"Bulk {n} LLC",
            display_name=f"Bulk {n}",
            record_id=f"QB-BULK-{n:06d}",
            cam=cam,
            status="offboarding",
        )
        for n in range(start, start + count)
    )
    Case.objects.bulk_create(
        Case(
            partner=partner,
            opened_by=cam,
            state="step_4",
            initiated_by=Initiator.COMPANY,
            reason=Reason.REVENUE_MINIMUM,
            request_received_on=dt.date(2026, 1, 5),
            request_channel=RequestChannel.INTERNAL_REVIEW,
            step_started_at=utc(2026, 1, 5),
            step_remind_at=remind_at,
            step_due_at=due_at,
            step_reminded_at=reminded_at,
            step_escalated_at=escalated_at,
        )
        for partner in partners
    )


def _analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE offboarding_case")


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("owed", "index", "field"),
    [
        (sweep.reminders_owed, "case_reminder_owed_idx", "step_remind_at"),
        (sweep.escalations_owed, "case_escalation_owed_idx", "step_due_at"),
    ],
)
def test_sweep_queries_use_the_partial_indexes_and_cost_follows_rows_due(roles, owed, index, field):
    cam = roles["cam"]
    now = utc(*TUE, 12)
    past, future = utc(2026, 3, 1), utc(2031, 1, 1)
    # Open cases already reminded and escalated: not owed anything, not in either index.
    _bulk_cases(cam, 2000, remind_at=past, due_at=past, reminded_at=past, escalated_at=past)
    # Open cases owed something only years from now, and 5 owed now.
    _bulk_cases(cam, 2000, remind_at=future, due_at=future)
    _bulk_cases(cam, 5, remind_at=past, due_at=past)
    _analyze()

    def measure():
        plan, names, pages = _explain(owed(now))
        sliced_plan, sliced_names, _ = _explain(
            owed(now).values_list("pk", "step_started_at")[: sweep.BATCH]
        )
        assert index in names, json.dumps(plan, indent=1)
        assert index in sliced_names, json.dumps(sliced_plan, indent=1)
        # It reads the rows owed and nothing else: none read and then filtered out.
        assert plan["Actual Rows"] == owed(now).count()
        assert not any(n.get("Rows Removed by Filter") for n in _plan_nodes(plan)), plan
        return pages

    def table_pages():
        with connection.cursor() as cursor:
            cursor.execute("SELECT relpages FROM pg_class WHERE relname = 'offboarding_case'")
            return cursor.fetchone()[0]

    # The cost is measured in pages the query actually touched (index and table).
    few_due = measure()

    # Twice as many open cases, none falling due: the cost stays where it was.
    _bulk_cases(cam, 4000, remind_at=future, due_at=future)
    _analyze()
    assert Case.objects.count() == 8005
    more_open = measure()
    assert more_open <= few_due + 1, (few_due, more_open)
    assert more_open * 20 < table_pages(), (more_open, table_pages())

    # 300 more falling due (still a small share of the rows): the cost grows with them.
    ids = list(
        Case.objects.filter(**{field: future}).order_by("pk").values_list("pk", flat=True)[:300]
    )
    Case.objects.filter(pk__in=ids).update(**{field: past})
    _analyze()
    assert owed(now).count() == 305
    more_due = measure()
    assert more_due > more_open + 2, (few_due, more_open, more_due)
