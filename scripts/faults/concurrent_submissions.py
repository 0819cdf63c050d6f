"""Fault: N identical submissions at once over HTTP.

Step 4 of the seeded Falcon Tax Services case, N times at the same instant from N sessions
of its CAM (same form, same expected_state); then a step-8 payment submitted N times with
one idempotency key by CAR. Exactly one event and one payment may come of each; nobody
gets a 500.
"""

import threading
import uuid

from stack import Browser, Stack, report, size_args


def at_once(browsers, path, data):
    """Every browser POSTs `data` to `path` as close to the same instant as threads allow."""
    barrier = threading.Barrier(len(browsers))
    statuses = [None] * len(browsers)

    def submit(index, browser):
        barrier.wait(timeout=60)
        response = browser.post(path, data)
        statuses[index] = response.status
        if response.status != 302:
            # What a person whose identical submission lost the race was told.
            print(f"{path} answered {response.status}: {alerts(response.text)[:2]}")

    threads = [threading.Thread(target=submit, args=pair) for pair in enumerate(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def alerts(page):
    import html
    import re

    found = re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>|\s+", " ", text)).strip() for text in found]


def main():
    args = size_args(__doc__).parse_args()
    n = 12 if args.small else 50
    with Stack(
        "concurrent", http_port=args.http_port, smtp_port=args.smtp_port, redis_port=args.redis_port
    ) as stack:
        stack.prepare_database()
        stack.start_redis()
        stack.start_gunicorn(workers=4, threads=4)
        stack.django()
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from offboarding.demo import drive
        from offboarding.models import Case, CaseEvent
        from payouts.models import Payment

        users = {u.username: u for u in get_user_model().objects.all()}
        case = Case.objects.get(partner__display_name="Falcon Tax Services", state="step_4")
        events_before = CaseEvent.objects.filter(case=case).count()
        cams = [Browser(stack.base).login("cam") for _ in range(n)]
        statuses = at_once(
            cams, f"/cases/{case.pk}/steps/4/", {"expected_state": "step_4", "confirm": "on"}
        )
        step_events = CaseEvent.objects.filter(case=case).count() - events_before

        # Money: a case at step 8 with an open payout, paid N times with one key.
        money = Case.objects.get(partner__display_name="Ironwood Accounting")
        money = drive(money, until="step_8", actors=users)
        payout = money.outstanding_payouts().first()
        payments_before = Payment.objects.filter(case=money).count()
        cars = [Browser(stack.base).login("car") for _ in range(n)]
        statuses += at_once(
            cars,
            f"/cases/{money.pk}/payments/",
            {
                "expected_state": "step_8",
                "idempotency_key": str(uuid.uuid4()),
                "payout": str(payout.pk),
                "amount": str(payout.remaining),
                "paid_on": timezone.localdate().isoformat(),
                "method": "ach",
                "reference": "ACH-FAULTS-1",
                "override_reason": "",
            },
        )
        payments = Payment.objects.filter(case=money).count() - payments_before
        if payments != 1:
            # What the page said to CAR: the reason the payment was not recorded.
            page = cars[0].get(f"/cases/{money.pk}/").text
            print("case page after the payments:", alerts(page))

        errors = sum(1 for status in statuses if status is None or status >= 500)
        figures = {
            "submissions": len(statuses),
            "events": step_events,
            "payments": payments,
            "duplicated": max(step_events - 1, 0) + max(payments - 1, 0),
            "errors_500": errors,
            "statuses": ",".join(
                f"{s}x{statuses.count(s)}" for s in sorted(set(statuses), key=str)
            ),
        }
        failures = []
        if step_events != 1:
            failures.append(f"{step_events} step-4 events from {n} identical submissions (want 1)")
        if payments != 1:
            failures.append(f"{payments} payments from {n} submissions of one key (want 1)")
        if errors:
            failures.append(f"{errors} responses were 500s or no answer")
        if failures:
            stack.tail_logs()
        raise SystemExit(report("concurrent_submissions", figures, failures))


if __name__ == "__main__":
    main()
