"""Fault: the broker stopped (SIGTERM) and frozen (SIGSTOP), again and again, while people
click through cases that notify someone.

The clicks are the CAM opening an offboarding case for a ready partner (the managers are
told) and withdrawing it (the managers are told again), over HTTP, timed. First with Redis
up, then in rounds: Redis stopped, clicks, Redis started; Redis frozen, clicks, Redis
thawed. Afterwards every notification row must end sent, each at the SMTP sink, and no
effect twice (a resend is allowed only with the row's own Message-ID).

The worker is supervised as compose's restart policy would: if it exits, it is started
again and counted (`worker_restarts`). The relay runs every few seconds here and takes rows
left 20 s, so the wait for the outbox to drain stays short; the figures do not depend on it.
"""

import datetime as dt
import time

import outbox
from stack import Browser, Stack, median, report, size_args

RELAY_ENV = {"PARTNEROPS_RELAY_EVERY_SECONDS": "5", "PARTNEROPS_OUTBOX_RELAY_AFTER_SECONDS": "20"}


def main():
    args = size_args(__doc__).parse_args()
    up_clicks, rounds, down_clicks, drain_s = (6, 2, 3, 240) if args.small else (20, 5, 6, 600)
    stack = Stack(
        "broker",
        http_port=args.http_port,
        smtp_port=args.smtp_port,
        redis_port=args.redis_port,
        extra_env=RELAY_ENV,
    )
    with stack:
        stack.prepare_database()
        stack.start_redis()
        stack.start_smtp()
        stack.start_gunicorn(workers=2)
        stack.start_worker(concurrency=2)
        stack.start_beat()
        stack.django()
        from django.db.models import Max
        from django.utils import timezone

        from notifications.models import Notification
        from offboarding.models import Case
        from partners.models import Partner, PartnerStatus

        start_pk = Notification.objects.aggregate(m=Max("pk"))["m"] or 0
        cam = Browser(stack.base).login("cam")
        partners = list(
            Partner.objects.filter(cam__username="cam", status=PartnerStatus.ACTIVE)
            .exclude(offboarding_cases__state__startswith="step_")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        received_on = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
        clicks = {"up": [], "stopped": [], "frozen": []}
        problems = []
        restarts = 0
        turn = 0

        def click(phase):
            """Open a case for the next ready partner, or withdraw the one just opened."""
            nonlocal turn
            partner = partners[(turn // 2) % len(partners)]
            if turn % 2 == 0:
                response = cam.post(
                    f"/partners/{partner}/offboard/",
                    {
                        "initiated_by": "company",
                        "reason": "revenue_minimum",
                        "reason_detail": "",
                        "request_received_on": received_on,
                        "request_channel": "internal_review",
                    },
                )
            else:
                case = Case.objects.filter(partner_id=partner).order_by("-pk").first()
                response = cam.post(
                    f"/cases/{case.pk}/withdraw/",
                    {"expected_state": case.state, "reason": f"fault suite round {turn}"},
                )
            turn += 1
            clicks[phase].append(response.ms)
            if response.status != 302:
                problems.append(f"{phase} click {turn}: HTTP {response.status}")

        def supervise():
            nonlocal restarts
            if not stack.alive("worker"):
                restarts += 1
                # Why it exited: the end of its log, before the new worker appends to it.
                log = (stack.work / "worker.log").read_text(errors="replace").splitlines()
                code = stack.procs["worker"].returncode
                print(f"worker exited ({code}); its last lines:", *log[-6:], sep="\n  ")
                stack.start_worker(concurrency=2)

        for _ in range(up_clicks):
            click("up")
        for _ in range(rounds):
            stack.stop_redis()
            for _ in range(down_clicks):
                click("stopped")
            stack.start_redis()
            time.sleep(2)
            supervise()
            stack.freeze_redis()
            for _ in range(down_clicks):
                click("frozen")
            stack.thaw_redis()
            time.sleep(2)
            supervise()

        started = time.monotonic()
        deadline = started + drain_s
        while time.monotonic() < deadline and outbox.owed(start_pk):
            supervise()
            time.sleep(1)
        drained_s = time.monotonic() - started
        time.sleep(1)  # the last message's line at the sink
        figures_out = outbox.tally(stack, start_pk)
        down = clicks["stopped"] + clicks["frozen"]
        figures = {
            "events": sum(len(v) for v in clicks.values()),
            "notifications": figures_out["rows"],
            "lost": figures_out["lost"],
            "duplicated": figures_out["duplicated"],
            "resends_same_message_id": figures_out["resends"],
            "stall_up_median_ms": round(median(clicks["up"])),
            "stall_median_ms": round(median(down)),
            "stall_max_ms": round(max(down)),
            "stall_stopped_median_ms": round(median(clicks["stopped"])),
            "stall_frozen_median_ms": round(median(clicks["frozen"])),
            "outages": rounds * 2,
            "worker_restarts": restarts,
            "drain_s": round(drained_s, 1),
            "http_errors": len(problems),
        }
        failures = [*problems]
        if figures["lost"]:
            failures.append(f"{figures['lost']} notification(s) not delivered within {drain_s}s")
        if figures["duplicated"]:
            failures.append(f"{figures['duplicated']} duplicated effect(s)")
        if figures["stall_median_ms"] > 1000:
            failures.append(
                f"a notifying click with the broker down took {figures['stall_median_ms']} ms "
                "at the median (target 1000)"
            )
        if failures:
            stack.tail_logs()
        raise SystemExit(report("broker_outage", figures, failures))


if __name__ == "__main__":
    main()
