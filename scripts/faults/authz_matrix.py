"""Fault: an authorization matrix over every URL of partnerops.urls and every role.

Every URL pattern (admin's included) is resolved with ids of real objects — cases at steps
2 to 13 of both CAMs, partners, an evidence file, pending overrides, a notification — and
requested by each demo user (cam, cam2, salesops, car, car2, portaladmin, manager, admin)
and anonymously. What each may do is derived from the rules themselves
(offboarding/access.py, partners/access.py), not from the views:

- a GET that the rules refuse must not answer 200 (anonymous: a redirect to a login page);
- a POST is a *valid* submission of the action (what the allowed role would send); when the
  rules refuse it, nothing may change in the database (events, payments, ledger statuses,
  case states, partners, overrides, notifications);
- a page a role may see but whose money it may not read (can_read_money) must not show a
  payment line (the case page, the case record's ZIP);
- no 500 anywhere.

After every refused POST has been tried, each action is submitted once by a role that may
do it: it must take effect, which shows that the submissions are ones the app accepts (a
refusal of a submission that could never work would prove nothing).

`build_world()` and `run()` take any client (`Browser` over HTTP here; Django's test
client in tests/test_fault_authz.py), so the matrix also runs in-process.
"""

import datetime as dt
import io
import re
import uuid
import zipfile
from collections import Counter

from stack import DEMO_USERS

# Patterns not in the matrix, and why (every other pattern must have a sample below).
SKIPPED = {
    "login/": "the login page is for everyone; logging in is tested by its own tests",
    "logout/": "logging out is allowed to every user and would end the matrix's session",
    "admin/logout/": "as logout/",
    "admin/login/": "the admin login page is for everyone",
    "bench/floor/": "served only by the benchmark's settings (bench/urls.py)",
}
MONEY_MARK = "ACH-PO-"  # the demo's payment references (offboarding/demo.py)


def _today():
    from django.utils import timezone

    return timezone.localdate()


def build_world() -> dict:
    """Cases at every step for both CAMs, an evidence file, overrides, via the services."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from offboarding import services
    from offboarding.demo import drive, request_data
    from offboarding.models import Case, EvidenceFile
    from offboarding.money.overrides import NeedsOverride, request_override
    from partners.models import Partner
    from payouts.models import OverrideKind

    users = {u.username: u for u in get_user_model().objects.filter(username__in=DEMO_USERS)}
    partners = {p.display_name: p for p in Partner.objects.all()}

    def case_of(name):
        return Case.objects.filter(partner__display_name=name).order_by("-pk").first()

    def opened(name, *, company, until, evidence=None):
        partner = partners[name]
        case = services.open_case(
            actor=partner.cam,
            partner_id=partner.pk,
            data=request_data(company=company, received_on=_today() - dt.timedelta(days=2)),
            evidence=evidence or [],
        )
        return drive(case, until=until, actors=users) if until else case

    pdf = SimpleUploadedFile("notice.pdf", b"%PDF-1.4 fault suite", "application/pdf")
    world = {
        "users": users,
        "steps": {
            2: case_of("Oakridge Consulting"),
            3: opened("Bluebird Accounting", company=False, until=None, evidence=[pdf]),
            4: case_of("Falcon Tax Services"),
            5: case_of("Granite CPA Group"),
            6: case_of("Harbor Finance"),
            7: case_of("Ironwood Accounting"),
            8: opened("Delta Bookkeeping", company=True, until="step_8"),
            9: case_of("Juniper Books"),
            10: opened("Valley Forge Partners", company=True, until="step_10"),
            11: opened("Silverline Partners", company=True, until="step_11"),
            12: case_of("Kestrel Partners"),
            13: opened("Pinecrest Partners", company=True, until="step_13"),
        },
        # Cases of their own for withdrawal and the portal correction, so that completing
        # the steps above (the allowed submissions) does not take them away.
        "withdrawable": [
            opened("Evergreen Advisors", company=True, until=None),
            opened("Yellowstone Partners", company=True, until="step_4"),
        ],
        "correctable": opened("Aspen Partners", company=True, until="step_5"),
        "partners": {
            "own": partners["Northwind Solutions"],  # cam's, ready to offboard
            "other": partners["Redwood Partners"],  # cam2's, ready to offboard
        },
    }
    steps = world["steps"]
    for number, case in steps.items():
        if case.state != f"step_{number}":
            raise SystemExit(f"the world's step {number} case is at {case.state}")
    world["evidence"] = EvidenceFile.objects.filter(event__case=steps[3]).first()
    money = steps[8]
    payout = money.outstanding_payouts().order_by("pk").last()
    world["overrides"] = [
        request_override(
            actor=users["car"],
            needed=NeedsOverride(
                "fault suite",
                partner=money.partner,
                kind=OverrideKind.PAYOUT,
                amount=payout.remaining - index,
                currency=payout.currency,
                payout=payout,
            ),
            reason=f"fault suite override {index}",
            case_id=money.pk,
        )
        for index in (1, 2)
    ]
    world["notification"] = (
        users["cam"].notifications.filter(read_at__isnull=True).order_by("pk").first()
    )
    if world["evidence"] is None or world["notification"] is None:
        raise SystemExit("the world has no evidence file or no unread notification")
    return world


# ---- what the rules allow ----


def _fresh(user):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=user.pk) if user is not None else None


def _sees_case(user, case):
    from offboarding.visibility import visible_cases

    return user is not None and visible_cases(user).filter(pk=case.pk).exists()


def _sees_partner(user, partner):
    from partners.access import visible_partners

    return user is not None and visible_partners(user).filter(pk=partner.pk).exists()


def _may_step(user, case):
    from offboarding import access
    from offboarding.models import Case

    case = Case.objects.select_related("partner").get(pk=case.pk)
    step = case.current_step
    if user is None or step is None or not _sees_case(user, case):
        return False
    return access.can_perform_step(user, case, step)


def _step_data(case) -> dict:
    from offboarding.models import Case

    case = Case.objects.select_related("partner").get(pk=case.pk)
    if case.current_step is None:
        return {"expected_state": case.state, "confirm": "on"}  # closed by an earlier POST
    number = case.current_step.number
    today = _today()
    data = {"expected_state": case.state, "note": "", "confirm": "on"}
    if number == 2:
        data |= {"legal_action": "no", "notice_date": str(today - dt.timedelta(days=1))}
    elif number == 3:
        data |= {
            "notice_date": str(today - dt.timedelta(days=1)),
            "notice_channel": "email",
            "requested_exit_date": str(today + dt.timedelta(days=45)),
        }
    elif number == 5:
        for key in ("status_reason", "opted_out", "distribution_group", "landing_pages"):
            data |= {f"{key}_done": "on", f"{key}_reference": f"TICKET-{case.pk}"}
    elif number == 6:
        data["licence"] = str(case.partner.licences.get(is_membership=True).pk)
    elif number == 7:
        data["money_on_table"] = "yes" if case.money_on_the_table() else "no"
    elif number == 10:
        data["portal"] = case.partner.portal
    return data


def _money_data(case, action) -> dict:
    from offboarding.models import Case
    from payouts.selectors import open_orders

    case = Case.objects.select_related("partner").get(pk=case.pk)
    base = {"expected_state": case.state, "idempotency_key": str(uuid.uuid4())}
    payouts = list(case.outstanding_payouts().order_by("pk"))
    today = str(_today())

    class _Gone:  # what an earlier POST already paid, voided or resolved
        pk, paid_amount = 0, 0

    payouts = payouts or [_Gone()]
    if action == "add_payment":
        payout = payouts[-1]
        return base | {
            "payout": str(payout.pk),
            "amount": "1.00",
            "paid_on": today,
            "method": "ach",
            "reference": f"ACH-PO-MATRIX-{uuid.uuid4().hex[:8]}",
            "override_reason": "",
        }
    if action == "pay_in_full":
        return base | {
            "payouts_to_pay": [str(payouts[-1].pk)],
            "paid_on": today,
            "method": "wire",
            "batch_reference": f"BATCH-{uuid.uuid4().hex[:8]}",
        }
    if action == "void_payout":
        unpaid = [p for p in payouts if not p.paid_amount] or [_Gone()]
        return base | {"payout": str(unpaid[0].pk), "reason": "duplicate payout in the ledger"}
    if action == "resolve_order":
        order = open_orders(case.partner).first() or _Gone()
        return base | {
            "order": str(order.pk),
            "outcome": "closed",
            "note": "fault suite",
            "override_reason": "",
        }
    return {"expected_state": case.state}


def _preferences() -> dict:
    from notifications.models import NotificationKind

    return {
        kind: "in_app" if kind == NotificationKind.STEP_ASSIGNED else "immediate"
        for kind in NotificationKind.values
        if kind != NotificationKind.DAILY_DIGEST
    }


def _snapshot() -> tuple:
    """Everything a refused action must leave as it was."""
    from notifications.models import Notification, NotificationPreference
    from offboarding.models import Case, CaseEvent
    from partners.models import Partner
    from payouts.models import Commission, GuardOverride, Order, Payment, Payout

    return (
        CaseEvent.objects.count(),
        Payment.objects.count(),
        Notification.objects.count(),
        Notification.objects.filter(read_at__isnull=False).count(),
        tuple(Case.objects.order_by("pk").values_list("pk", "state", "offboard_date")),
        tuple(Partner.objects.order_by("pk").values_list("pk", "status", "portal")),
        tuple(Payout.objects.order_by("pk").values_list("pk", "status", "void_reason")),
        tuple(Order.objects.order_by("pk").values_list("pk", "status")),
        tuple(Commission.objects.order_by("pk").values_list("pk", "status")),
        tuple(GuardOverride.objects.order_by("pk").values_list("pk", "status")),
        tuple(NotificationPreference.objects.order_by("pk").values_list("pk", "delivery")),
    )


# ---- the samples: one or more per URL pattern ----


def _walk(patterns, prefix=""):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _admin_url(route):
    """A real id for the admin model in the route (Django's own views behind login)."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    from offboarding.models import Case

    def object_id():
        match = re.match(r"admin/(\w+)/(\w+)/", route)
        if match:
            try:
                model = apps.get_model(match.group(1), match.group(2))
            except LookupError:
                model = None
            if model is not None:
                first = model.objects.order_by("pk").first()
                return first.pk if first is not None else 987654
        return Case.objects.order_by("pk").first().pk

    values = {
        "object_id": object_id,
        "pk": object_id,
        "id": lambda: 1,
        "content_type_id": lambda: ContentType.objects.get_for_model(Case).pk,
        "app_label": lambda: "offboarding",
        "url": lambda: "no-such-page/",
        "transition_name": lambda: "record_company_removal",
    }

    def sub(match):
        name = match.group("name")
        if name not in values:
            raise AssertionError(f"No sample value for <{name}> in {route!r}: add one.")
        return str(values[name]())

    url = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", sub, route)
    url = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", sub, url)
    return "/" + url.replace("^", "").replace("$", "")


class Sample:
    """One URL, who may GET it, and (for an action) the valid POST and who may send it."""

    def __init__(self, route, url, *, get=None, post=None, data=None, money_page=False):
        self.route, self.url = route, url
        self.get, self.post, self.data = get, post, data
        self.money_page = money_page


def samples(world) -> list[Sample]:
    from django.urls import get_resolver

    from offboarding import access
    from offboarding.process import Lane

    anyone = lambda user: user is not None  # noqa: E731
    steps, partners = world["steps"], world["partners"]
    own_case, other_case = steps[4], steps[9]  # cam's, and cam2's with payments by car
    money_case = steps[8]

    def money_reader(user):
        return user is not None and access.can_read_money(user)

    def car_on(case):
        def rule(user):
            return _sees_case(user, case) and access.can_perform(user, case, Lane.CAR)

        return rule

    def decides(override):
        def rule(user):
            return (
                user is not None
                and access.holds_lane(user, Lane.CAR)
                and user.pk != override.requested_by_id
            )

        return rule

    by_route = {
        "": [{"get": anyone}],
        "work/": [{"get": anyone}],
        "cases/": [{"get": anyone}],
        "partners/": [{"get": anyone}],
        "inbox/": [{"get": anyone}],
        "inbox/preferences/": [{"get": anyone, "post": anyone, "data": _preferences}],
        "inbox/read-all/": [{"post": anyone, "data": dict}],
        "inbox/<int:pk>/read/": [
            {
                "pk": world["notification"].pk,
                "post": lambda u: u is not None and u.pk == world["notification"].recipient_id,
                "data": dict,
            }
        ],
        "car/": [
            {"get": lambda u: u is not None and (access.holds_lane(u, Lane.CAR) or money_reader(u))}
        ],
        "reports/payments-after-offboard/": [{"get": money_reader}],
        "healthz": [{"get": lambda u: True}],
        # The second factor's own pages: each user's own enrolment and check (their POSTs
        # need a device's code and are tested by the second factor's tests).
        "account/two-factor/": [{"get": anyone}],
        "account/two-factor/verify/": [{"get": anyone}],
        "cases/<int:pk>/": [
            {"pk": c.pk, "get": lambda u, c=c: _sees_case(u, c), "money_page": c is other_case}
            for c in (own_case, other_case, money_case)
        ],
        "cases/<int:pk>/record.zip": [
            {"pk": c.pk, "get": lambda u, c=c: _sees_case(u, c), "money_page": c is other_case}
            for c in (own_case, other_case)
        ],
        "cases/<int:pk>/statement/": [
            {"pk": c.pk, "get": lambda u, c=c: _sees_case(u, c) and money_reader(u)}
            for c in (own_case, other_case)
        ],
        "cases/<int:pk>/steps/<int:step_number>/": [
            {
                "pk": case.pk,
                "step_number": number,
                "post": lambda u, c=case: _may_step(u, c),
                "data": lambda c=case: _step_data(c),
            }
            for number, case in sorted(steps.items())
            if number != 8  # step 8 closes only when everything is paid: the money actions
        ],
        "cases/<int:pk>/withdraw/": [
            {
                "pk": c.pk,
                "post": lambda u, c=c: _sees_case(u, c) and access.can_withdraw(u, _fresh_case(c)),
                "data": lambda c=c: {"expected_state": _fresh_case(c).state, "reason": "matrix"},
            }
            for c in world["withdrawable"]
        ],
        "cases/<int:pk>/partner-portal/": [
            {
                "pk": c.pk,
                "post": lambda u, c=c: (
                    _sees_case(u, c) and access.can_correct_portal(u, _fresh_case(c))
                ),
                "data": lambda c=c: {
                    "expected_state": _fresh_case(c).state,
                    "portal": "beta" if _fresh_case(c).partner.portal == "legacy" else "legacy",
                    "reason": "the record named the wrong portal",
                },
            }
            for c in (steps[6], world["correctable"])
        ],
        "evidence/<int:pk>/": [
            {"pk": world["evidence"].pk, "get": lambda u: _sees_case(u, steps[3])}
        ],
        "partners/<int:pk>/": [
            {"pk": p.pk, "get": lambda u, p=p: _sees_partner(u, p)} for p in partners.values()
        ],
        "partners/<int:partner_pk>/offboard/": [
            {
                "partner_pk": p.pk,
                "get": lambda u, p=p: _sees_partner(u, p) and access.can_open_case(u, p),
                "post": lambda u, p=p: _sees_partner(u, p) and access.can_open_case(u, p),
                "data": lambda: {
                    "initiated_by": "company",
                    "reason": "revenue_minimum",
                    "reason_detail": "",
                    "request_received_on": str(_today() - dt.timedelta(days=1)),
                    "request_channel": "internal_review",
                },
            }
            for p in partners.values()
        ],
        "partners/<int:partner_pk>/case-records.zip": [
            {"partner_pk": c.partner_id, "get": lambda u, c=c: _sees_case(u, c)}
            for c in (own_case, other_case)
        ],
        "overrides/<int:pk>/approve/": [
            {"pk": world["overrides"][0].pk, "post": decides(world["overrides"][0]), "data": dict}
        ],
        "overrides/<int:pk>/refuse/": [
            {
                "pk": world["overrides"][1].pk,
                "post": decides(world["overrides"][1]),
                "data": lambda: {"reason": "not covered by the contract"},
            }
        ],
    }
    # Step 8's money forms, each opened alone (htmx) or in the case page: CAR's only.
    by_route["cases/<int:pk>/money/<slug:form_name>/"] = [
        {"pk": money_case.pk, "form_name": name, "get": car_on(money_case)}
        for name in ("payment", "pay-in-full", "void", "commissions", "order")
    ]
    for action, route in (
        ("add_payment", "cases/<int:pk>/payments/"),
        ("pay_in_full", "cases/<int:pk>/payments/in-full/"),
        ("void_payout", "cases/<int:pk>/payouts/void/"),
        ("resolve_order", "cases/<int:pk>/orders/resolve/"),
        ("roll_up", "cases/<int:pk>/commissions/roll-up/"),
    ):
        by_route[route] = [
            {
                "pk": money_case.pk,
                "post": car_on(money_case),
                "data": lambda a=action: _money_data(money_case, a),
            }
        ]

    result, unknown = [], []
    for route, _pattern in _walk(get_resolver().url_patterns):
        if route in SKIPPED:
            continue
        if route.startswith("admin/"):
            result.append(
                Sample(route, _admin_url(route), get=lambda u: u is not None and u.is_staff)
            )
            continue
        if route not in by_route:
            unknown.append(route)
            continue
        for spec in by_route[route]:
            spec = dict(spec)
            rule_get, rule_post = spec.pop("get", None), spec.pop("post", None)
            data, money_page = spec.pop("data", None), spec.pop("money_page", False)
            url = "/" + re.sub(
                r"<(?:\w+:)?(?P<name>\w+)>", lambda m, s=spec: str(s[m.group("name")]), route
            )
            result.append(
                Sample(route, url, get=rule_get, post=rule_post, data=data, money_page=money_page)
            )
    if unknown:
        raise AssertionError(f"URL patterns with no sample in the matrix: {unknown}")
    return result


def _fresh_case(case):
    from offboarding.models import Case

    return Case.objects.select_related("partner").get(pk=case.pk)


# ---- running it ----


def _money_in(response) -> bool:
    body = response.body
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return any(
                MONEY_MARK.encode() in archive.read(name)
                for name in archive.namelist()
                if not name.endswith("statement.csv")
            )
    return MONEY_MARK.encode() in body


def _login_redirect(response) -> bool:
    return response.status == 302 and "/login/" in (response.location or "")


def run(world, clients: dict) -> dict:
    """`clients`: username (None for anonymous) → a logged-in client with get/post."""
    from django.urls import resolve

    users = {name: world["users"][name] for name in DEMO_USERS}
    users[None] = None
    figures = Counter()
    details = []
    all_samples = samples(world)
    for sample in all_samples:
        resolve(sample.url)  # a sample that does not resolve is a bug of the matrix
    patterns = {s.route for s in all_samples}

    def note(kind, sample, who, method, response, extra=""):
        figures[kind] += 1
        details.append(
            f"{kind}: {method} {sample.url} as {who or 'anonymous'} -> "
            f"{response.status} {response.location or ''} {extra}".rstrip()
        )

    # GETs, and every POST the rules refuse.
    for sample in all_samples:
        for who, user in users.items():
            user = _fresh(user)
            client = clients[who]
            if sample.get is not None:
                response = client.get(sample.url)
                figures["requests"] += 1
                allowed = sample.get(user)
                if response.status >= 500 and not (
                    sample.route == "healthz" and response.status == 503
                ):
                    # /healthz says 503 when a check fails (no worker runs here): its answer.
                    note("errors_500", sample, who, "GET", response)
                elif user is None and not _login_redirect(response) and sample.route != "healthz":
                    note(
                        "violations", sample, who, "GET", response, "(anonymous not sent to login)"
                    )
                elif not allowed and response.status == 200:
                    note("violations", sample, who, "GET", response)
                elif (
                    allowed
                    and response.status not in (200, 302)
                    and sample.route != "healthz"
                    and not sample.route.startswith("admin/")
                ):
                    # Admin is view-only for the ledger and case rows by design (403 on add
                    # and delete): the staff side of admin is Django's, not the role rules.
                    note("unexpected_refusals", sample, who, "GET", response)
                if (
                    sample.money_page
                    and response.status == 200
                    and user is not None
                    and sample.get(user) is not False
                    and not _reads_money(user)
                    and _money_in(response)
                ):
                    note("money_leaks", sample, who, "GET", response, "(payment lines shown)")
                if (
                    sample.money_page
                    and response.status == 200
                    and user is not None
                    and _reads_money(user)
                    and _money_in(response)
                ):
                    # The leak check can fail: the payment lines are there for who may read them.
                    figures["money_shown_to_readers"] += 1
            if sample.post is not None and not sample.post(user):
                before = _snapshot()
                response = client.post(sample.url, sample.data())
                figures["requests"] += 1
                if response.status >= 500:
                    note("errors_500", sample, who, "POST", response)
                if _snapshot() != before:
                    note(
                        "violations",
                        sample,
                        who,
                        "POST",
                        response,
                        "(a refused action changed data)",
                    )
                elif user is None and not _login_redirect(response):
                    note(
                        "violations", sample, who, "POST", response, "(anonymous not sent to login)"
                    )

    # Then each action once by a role the rules allow: it must take effect. The steps go
    # last: completing one moves its case on, past what the other actions need.
    steps_last = sorted(all_samples, key=lambda s: s.route.startswith("cases/<int:pk>/steps/"))
    for sample in steps_last:
        if sample.post is None:
            continue
        allowed = [who for who, user in users.items() if sample.post(_fresh(user))]
        if not allowed:
            figures["actions_nobody_may_do"] += 1
            details.append(f"no role may POST {sample.url}")
            continue
        before = _snapshot()
        response = clients[allowed[0]].post(sample.url, sample.data())
        figures["requests"] += 1
        figures["actions"] += 1
        if response.status >= 500:
            note("errors_500", sample, allowed[0], "POST", response)
        elif _snapshot() == before and sample.route not in ("inbox/read-all/",):
            note("allowed_without_effect", sample, allowed[0], "POST", response)
    figures["patterns"] = len(patterns)
    figures["samples"] = len(all_samples)
    return {"figures": figures, "details": details}


def _reads_money(user) -> bool:
    from offboarding.access import can_read_money

    return can_read_money(user)


def main():
    from stack import REQUESTS_ONLY, Browser, Stack, report, size_args

    args = size_args(__doc__).parse_args()
    with Stack(
        "authz",
        http_port=args.http_port,
        smtp_port=args.smtp_port,
        redis_port=args.redis_port,
        extra_env=REQUESTS_ONLY,
    ) as stack:
        stack.prepare_database()
        stack.start_redis()
        stack.start_gunicorn(workers=3)
        stack.django()
        world = build_world()
        clients = {name: Browser(stack.base).login(name) for name in DEMO_USERS}
        clients[None] = Browser(stack.base)
        outcome = run(world, clients)
        figures = outcome["figures"]
        for line in outcome["details"]:
            print(line)
        shown = {
            key: figures[key]
            for key in (
                "patterns",
                "samples",
                "requests",
                "violations",
                "money_leaks",
                "money_shown_to_readers",
                "errors_500",
                "actions",
                "allowed_without_effect",
                "unexpected_refusals",
            )
        }
        shown["roles"] = len(clients)
        failures = []
        if figures["violations"]:
            failures.append(f"{figures['violations']} authorization violation(s)")
        if figures["money_leaks"]:
            failures.append(
                f"{figures['money_leaks']} page(s) show payments to a role refused the statement"
            )
        if figures["errors_500"]:
            failures.append(f"{figures['errors_500']} response(s) were 500s")
        if not figures["money_shown_to_readers"]:
            failures.append("no money page showed payments even to CAR: the leak check is vacuous")
        if figures["allowed_without_effect"] or figures["actions_nobody_may_do"]:
            failures.append(
                "an allowed action had no effect: the matrix's refusals prove nothing there"
            )
        if failures:
            stack.tail_logs()
        raise SystemExit(report("authz_matrix", shown, failures))


if __name__ == "__main__":
    main()
