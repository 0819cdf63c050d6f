"""Back-end timings for `make bench` (`manage.py bench_backend`), on the bench database.

- The deadline sweep (offboarding.sweep.run) with `open_steps` open steps and none due, then
  with 1% of them due — inside one transaction that is rolled back, so the data set is left
  as it was (the notifications the sweep writes are never committed, never sent).
- The service path: fresh partners taken through every step of one branch (1, 3, 4-13:
  notice, money, beta portal) by `offboarding.demo.drive`, each call committing as in
  production. Those cases stay in the database (they cannot be deleted: history is
  append-only); they belong to a CAM none of the benchmarked pages looks at.
"""

import datetime as dt
import statistics
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from offboarding import services, sweep
from offboarding.demo import drive, request_data
from offboarding.models import CaseEvent
from offboarding.process import CLOSED_STATES
from partners.models import Licence, Partner, Portal, ReferralLink
from payouts.models import Commission, Order, Payout

SERVICE_CAM = "cam60"


@contextmanager
def counting_queries():
    counter = {"queries": 0}

    def count(execute, sql, params, many, context):
        counter["queries"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _open_count(cursor) -> int:
    cursor.execute(
        "SELECT count(*) FROM offboarding_case WHERE NOT (state = ANY(%s))", [list(CLOSED_STATES)]
    )
    return cursor.fetchone()[0]


def _top_up_open_cases(cursor, open_steps: int, now: dt.datetime) -> int:
    """Open cases on new partners (one each), due 5 hours to 20 days from now: none owed."""
    need = max(0, open_steps - _open_count(cursor))
    if not need:
        return 0
    cam_id = get_user_model().objects.get(username=SERVICE_CAM).pk
    tag = uuid.uuid4().hex[:8]
    cursor.execute(
        """
        INSERT INTO partners_partner (legal_name, display_name, record_id, crm_account_id,
            portal_partner_id, email, program, tier, joined_on, status, status_reason,
            opted_out, in_distribution_group, landing_page_access, portal, created_at,
            updated_at, cam_id)
        SELECT 'Sweep partner ' || g, 'Sweep partner ' || g, 'SW-' || %(tag)s || '-' || g,
            '', '', '', 'Reseller Program', 'member', %(today)s, 'offboarding', '', false,
            true, true, 'legacy', %(now)s, %(now)s, %(cam)s
        FROM generate_series(1, %(need)s) AS g
        """,
        {"tag": tag, "today": now.date(), "now": now, "cam": cam_id, "need": need},
    )
    cursor.execute(
        """
        INSERT INTO offboarding_case (state, opened_at, initiated_by, reason, reason_detail,
            request_received_on, request_channel, portal, withdrawal_reason, step_started_at,
            step_due_at, step_remind_at, opened_by_id, partner_id)
        SELECT 'step_4', %(started)s, 'partner', 'business_change', '', %(today)s, 'email',
            '', '', %(started)s, %(now)s + (5 + p.id %% 475) * interval '1 hour',
            %(now)s + (1 + p.id %% 475) * interval '1 hour', %(cam)s, p.id
        FROM partners_partner p WHERE p.record_id LIKE 'SW-' || %(tag)s || '-%%'
        """,
        {
            "tag": tag,
            "today": now.date(),
            "now": now,
            "started": now - dt.timedelta(hours=1),
            "cam": cam_id,
        },
    )
    cursor.execute("ANALYZE offboarding_case")
    return need


def _plans(now):
    overdue = (
        sweep.escalations_owed(now)
        .order_by("step_due_at")
        .values_list("pk", "step_started_at")[: sweep.BATCH]
    )
    soon = (
        sweep.reminders_owed(now)
        .order_by("step_remind_at")
        .values_list("pk", "step_started_at")[: sweep.BATCH]
    )
    return {"escalations_owed": overdue.explain(), "reminders_owed": soon.explain()}


def time_sweep(open_steps: int, *, due_fraction: float = 0.01, repeats: int = 7) -> dict:
    now = timezone.now()
    result: dict = {"open_steps_target": open_steps}
    with transaction.atomic():
        with connection.cursor() as cursor:
            # What fell due since the data set was generated: as if the sweep had run.
            cursor.execute(
                "UPDATE offboarding_case SET step_reminded_at = %s "
                "WHERE step_reminded_at IS NULL AND step_remind_at <= %s",
                [now, now],
            )
            caught_up = cursor.rowcount
            cursor.execute(
                "UPDATE offboarding_case SET step_escalated_at = %s "
                "WHERE step_escalated_at IS NULL AND step_due_at <= %s",
                [now, now],
            )
            caught_up += cursor.rowcount
            result["caught_up_before_timing"] = caught_up
            result["added_open_cases"] = _top_up_open_cases(cursor, open_steps, now)
            result["open_steps"] = _open_count(cursor)
        # None due.
        runs = []
        for _ in range(repeats):
            with counting_queries() as counter:
                started = time.perf_counter()
                outcome = sweep.run(now)
                runs.append(time.perf_counter() - started)
            if outcome.reminded or outcome.escalated:
                raise RuntimeError(f"expected nothing due, the sweep sent {outcome}")
        result["none_due"] = {
            "runs": repeats,
            "median_ms": _ms(statistics.median(runs)),
            "min_ms": _ms(min(runs)),
            "max_ms": _ms(max(runs)),
            "queries": counter["queries"],
        }
        result["plans"] = _plans(now)
        # 1% due: the same number of open steps, some of them now overdue.
        due = max(1, round(result["open_steps"] * due_fraction))
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE offboarding_case SET
                    step_due_at = %(now)s - interval '1 hour' - (id %% 60) * interval '1 minute',
                    step_remind_at = %(now)s - interval '5 hours',
                    step_reminded_at = NULL, step_escalated_at = NULL
                WHERE id IN (
                    SELECT id FROM offboarding_case WHERE NOT (state = ANY(%(closed)s))
                    ORDER BY md5(id::text) LIMIT %(due)s
                )
                """,
                {"now": now, "closed": list(CLOSED_STATES), "due": due},
            )
        passes = []
        total_started = time.perf_counter()
        for _ in range(20):
            with counting_queries() as counter:
                started = time.perf_counter()
                outcome = sweep.run(now)
                elapsed = time.perf_counter() - started
            passes.append(
                {
                    "ms": _ms(elapsed),
                    "escalated": outcome.escalated,
                    "reminded": outcome.reminded,
                    "queries": counter["queries"],
                }
            )
            if not (outcome.escalated or outcome.reminded):
                break
        total = time.perf_counter() - total_started
        handled = sum(p["escalated"] for p in passes)
        result["one_percent_due"] = {
            "due": due,
            "passes": passes,
            "first_pass_ms": passes[0]["ms"],
            "total_ms": _ms(total),
            "escalated": handled,
            "reminded": sum(p["reminded"] for p in passes),
            "ms_per_due_step": _ms(total / due) if due else None,
        }
        transaction.set_rollback(True)
    return result


def _fresh_partner(cam, tag: str, n: int) -> Partner:
    """A beta-portal partner with money on the table: payouts, a commission, an order."""
    today = timezone.localdate()
    partner = Partner.objects.create(
        legal_name=f"Service path {tag}-{n} LLC",
        display_name=f"Service path {tag}-{n}",
        record_id=f"SVC-{tag}-{n}",
        cam=cam,
        portal=Portal.BETA,
        joined_on=today - dt.timedelta(days=900),
    )
    Licence.objects.create(
        partner=partner, sku="RPM-0", product_name="Reseller Premier Membership", is_membership=True
    )
    for k in (1, 2):
        ReferralLink.objects.create(
            partner=partner, code=f"svc-{tag}-{n}-{k}", target_url="https://portal.example/r"
        )
    for k in (1, 2):
        Payout.objects.create(
            partner=partner,
            reference=f"SVC-{tag}-{n}-{k}",
            description="Commission",
            amount=Decimal("120.00") * k,
            currency="USD",
            earned_on=today - dt.timedelta(days=40),
        )
    Commission.objects.create(
        partner=partner,
        source="portal",
        reference=f"SVC-{tag}-{n}",
        period_start=today - dt.timedelta(days=60),
        period_end=today - dt.timedelta(days=31),
        earned_on=today - dt.timedelta(days=30),
        amount=Decimal("75.25"),
        currency="USD",
    )
    Order.objects.create(
        partner=partner,
        reference=f"SVC-{tag}-{n}",
        ordered_on=today - dt.timedelta(days=20),
        amount=Decimal("49.00"),
        currency="USD",
    )
    return partner


def time_service_path(cases: int) -> dict:
    """Cases per second through the services, from opening to Done, committing each call."""
    from partnerops.celery import app

    # The notifications' emails are handed to an in-memory broker: no worker runs here,
    # and nothing lands in the queue of the development broker.
    app.conf.broker_url = "memory://localhost/"
    users = {
        user.username: user
        for user in get_user_model().objects.filter(
            username__in=["salesops", "car", "car2", "portaladmin", SERVICE_CAM]
        )
    }
    cam = users[SERVICE_CAM]
    tag = timezone.now().strftime("%Y%m%d%H%M%S")
    partners = [_fresh_partner(cam, tag, n) for n in range(cases)]
    durations, case_ids = [], []
    with counting_queries() as counter:
        started = time.perf_counter()
        for partner in partners:
            one = time.perf_counter()
            case = services.open_case(
                actor=cam,
                partner_id=partner.pk,
                data=request_data(
                    company=False, received_on=timezone.localdate() - dt.timedelta(days=1)
                ),
            )
            case = drive(case, until="done", actors=users)
            if case.state != "done":
                raise RuntimeError(f"case {case.pk} stopped at {case.state}")
            durations.append(time.perf_counter() - one)
            case_ids.append(case.pk)
        total = time.perf_counter() - started
    steps = CaseEvent.objects.filter(case_id__in=case_ids, kind="step_completed").count()
    events = CaseEvent.objects.filter(case_id__in=case_ids).count()
    return {
        "cases": cases,
        "steps_per_case": round(steps / cases, 1) if cases else 0,
        "events_per_case": round(events / cases, 1) if cases else 0,
        "total_s": round(total, 3),
        "cases_per_s": round(cases / total, 2) if total else None,
        "median_ms_per_case": _ms(statistics.median(durations)) if durations else None,
        "queries_per_case": round(counter["queries"] / cases, 1) if cases else 0,
    }
