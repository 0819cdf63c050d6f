"""Fault: a bounded fuzz of every form, over HTTP, as the role that may use it.

Each form of the app (steps 2-13, opening a case, withdrawal, the portal correction, step 8's
four money forms and the roll-up, refusing an override, notification preferences, and last
the login form) is first filled in validly, then one field at a time replaced by a hostile
value chosen by the field's type: a NUL character, more than its maximum length, a huge
string, the field twice, a missing or empty value, impossible and far dates, negative, huge,
non-finite and over-precise amounts, unknown choices and ids, a file of a refused type, an
empty file or one with a NUL in its name, a body that is not UTF-8, a body in another charset.
The fields are read from the form classes themselves, so a new field is fuzzed too.

A submission answered 4xx is refused: nothing may have changed in the database (case states,
events, evidence, payments, ledger statuses, partners, licences, links, overrides,
notifications, preferences). A submission that changed something was accepted and is listed
(a form's later values then meet a case that has moved on). No 500 anywhere.
"""

import datetime as dt
import uuid

from authz_matrix import _money_data, _preferences, _step_data, build_world
from stack import REQUESTS_ONLY, Browser, Stack, report, size_args

HUGE_ID = "99999999999999999999"


def snapshot() -> tuple:
    from notifications.models import Notification, NotificationPreference
    from offboarding.models import Case, CaseEvent, EvidenceFile
    from partners.models import Licence, Partner, ReferralLink
    from payouts.models import Commission, GuardOverride, Order, Payment, Payout

    return (
        CaseEvent.objects.count(),
        EvidenceFile.objects.count(),
        Payment.objects.count(),
        Notification.objects.count(),
        tuple(Case.objects.order_by("pk").values_list("pk", "state", "offboard_date")),
        tuple(Partner.objects.order_by("pk").values_list("pk", "status", "portal")),
        tuple(Licence.objects.order_by("pk").values_list("pk", "status")),
        tuple(ReferralLink.objects.order_by("pk").values_list("pk", "status")),
        tuple(Payout.objects.order_by("pk").values_list("pk", "status", "void_reason")),
        tuple(Order.objects.order_by("pk").values_list("pk", "status")),
        tuple(Commission.objects.order_by("pk").values_list("pk", "status")),
        tuple(GuardOverride.objects.order_by("pk").values_list("pk", "status")),
        tuple(NotificationPreference.objects.order_by("pk").values_list("pk", "delivery")),
    )


def hostile_values(field, *, small: bool):
    """(value, may_be_valid) pairs for a form field, by its type. None: leave the field out.
    Values that a form may rightly accept go last, so they do not end a form's run early."""
    from django import forms

    nul = [("\x00", False), ("ok\x00ok", False)]
    values = list(nul)
    if isinstance(field, forms.DateField):
        values += [
            ("2026-02-30", False),
            ("2026-13-01", False),
            ("31/12/2026", False),
            ("tomorrow", False),
            ("1" * 40, False),
            ("-1", False),
            ("0001-01-01", True),
            ("9999-12-31", True),
        ]
    elif isinstance(field, forms.DecimalField):
        values += [
            ("-5", False),
            ("0", False),
            ("-0.001", False),
            ("1e309", False),
            ("NaN", False),
            ("Infinity", False),
            ("12.345", False),
            ("1,000.00", False),
            ("0x10", False),
            ("99999999999999999999.99", False),
            ("9999999999999.99", False),
        ]
    elif isinstance(field, forms.UUIDField):
        values += [("not-a-uuid", False), (HUGE_ID, False)]
    elif isinstance(field, forms.FileField):
        # A NUL in the file name: the multipart parser may clean the name and accept the file.
        return [("exe", False), ("empty", False), ("nul-name", True)]
    elif isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
        values += [
            ("unknown-choice", False),
            ("-1", False),
            (HUGE_ID, False),
            ("1.5", False),
            ("²", False),
        ]
    elif isinstance(field, forms.BooleanField):
        values += [("false", not field.required)]
    elif isinstance(field, forms.CharField):
        limit = field.max_length
        if limit:
            values += [("x" * (limit + 1), False)]
        values += [
            ("<script>alert(1)</script>", True),
            ("A" * (20_000 if small else 200_000), limit is None),
        ]
    values += [(None, not field.required), ("", not field.required), (["a", "b"], True)]
    return values


def multipart(data: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
            parts.append(f"{head}{item}\r\n".encode())
    for field, name, content in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


FILES = {
    "exe": ("payload.exe", b"MZ\x90\x00 not a document"),
    "empty": ("empty.pdf", b""),
    "nul-name": ("evil\x00.pdf", b"%PDF-1.4 fault suite"),
}


class Target:
    def __init__(self, name, url, role, form, data):
        self.name, self.url, self.role = name, url, role
        self.form, self.data = form, data  # form: a callable giving a bound-less instance


def targets(world) -> list[Target]:
    from notifications.forms import PreferencesForm
    from offboarding.forms import STEP_FORMS, PortalCorrectionForm, RequestForm, WithdrawForm
    from offboarding.models import Case
    from offboarding.money.forms import PayInFullForm, PaymentForm, ResolveOrderForm, VoidPayoutForm

    steps = world["steps"]

    def fresh(case):
        return Case.objects.select_related("partner").get(pk=case.pk)

    def lane_user(case):
        number = case.current_step.number
        if number == 9:
            return "car2"  # car recorded the payments (Decision B)
        lane = case.current_step.lane.value
        return {
            "partner": case.partner.cam.username,
            "cam": case.partner.cam.username,
            "sales_ops": "salesops",
            "car": "car",
            "portal_admin": "portaladmin",
        }[lane]

    result = [
        Target(
            f"step_{number}",
            f"/cases/{case.pk}/steps/{number}/",
            lane_user(case),
            lambda c=case, n=number: STEP_FORMS[n](case=fresh(c)),
            lambda c=case: _step_data(c),
        )
        for number, case in sorted(steps.items())
    ]
    partner = world["partners"]["own"]
    money = steps[8]
    result += [
        Target(
            "open_case",
            f"/partners/{partner.pk}/offboard/",
            "cam",
            RequestForm,
            lambda: {
                "initiated_by": "company",
                "reason": "revenue_minimum",
                "reason_detail": "",
                "request_received_on": str(dt.date.today() - dt.timedelta(days=1)),
                "request_channel": "internal_review",
            },
        ),
        Target(
            "withdraw",
            f"/cases/{steps[5].pk}/withdraw/",
            "manager",
            lambda: WithdrawForm(case=fresh(steps[5])),
            lambda: {"expected_state": fresh(steps[5]).state, "reason": "fuzz"},
        ),
        Target(
            "correct_portal",
            f"/cases/{steps[10].pk}/partner-portal/",
            "salesops",
            lambda: PortalCorrectionForm(case=fresh(steps[10])),
            lambda: {
                "expected_state": fresh(steps[10]).state,
                "portal": "legacy",
                "reason": "the record named the wrong portal",
            },
        ),
    ]
    for name, path, form_class in (
        ("add_payment", "payments/", PaymentForm),
        ("pay_in_full", "payments/in-full/", PayInFullForm),
        ("void_payout", "payouts/void/", VoidPayoutForm),
        ("resolve_order", "orders/resolve/", ResolveOrderForm),
    ):
        result.append(
            Target(
                name,
                f"/cases/{money.pk}/{path}",
                "car",
                lambda f=form_class: f(case=fresh(money)),
                lambda n=name: _money_data(money, n),
            )
        )
    result += [
        Target(
            "roll_up",
            f"/cases/{money.pk}/commissions/roll-up/",
            "car",
            None,
            lambda: {"expected_state": fresh(money).state},
        ),
        Target(
            "refuse_override",
            f"/overrides/{world['overrides'][1].pk}/refuse/",
            "car2",
            None,
            lambda: {"reason": "not covered", "next": f"/cases/{money.pk}/"},
        ),
        Target(
            "preferences",
            "/inbox/preferences/",
            "cam",
            lambda: PreferencesForm(current={}),
            _preferences,
        ),
    ]
    return result


def fields_of(target) -> dict:
    from django import forms

    if target.form is None:
        # Views that read request.POST directly: their keys, as text fields.
        return {key: forms.CharField(required=False) for key in target.data()}
    form = target.form()
    return dict(form.fields)


def main():
    args = size_args(__doc__).parse_args()
    with Stack(
        "fuzz",
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
        clients = {}
        figures = {
            "forms": 0,
            "fields": 0,
            "submissions": 0,
            "refused": 0,
            "accepted": 0,
            "errors_500": 0,
            "partial_writes": 0,
        }
        details = []

        def submit(target, label, data=None, *, body=None, content_type=None):
            if target.role not in clients:
                clients[target.role] = Browser(stack.base).login(target.role)
            client = clients[target.role]
            headers = {"Content-Type": content_type} if content_type else None
            before = snapshot()
            response = client.post(target.url, data, body=body, headers=headers)
            changed = snapshot() != before
            figures["submissions"] += 1
            where = f"{target.name} {label} as {target.role}: HTTP {response.status}"
            if response.status >= 500:
                figures["errors_500"] += 1
                details.append(f"500: POST {target.url} {where}")
            elif 400 <= response.status < 500:
                figures["refused"] += 1
                if changed:
                    figures["partial_writes"] += 1
                    details.append(f"partial write: POST {target.url} {where}")
            elif changed:
                figures["accepted"] += 1
                details.append(f"accepted: POST {target.url} {where}")
            else:
                figures["refused"] += 1  # a redirect with a message, nothing recorded
            return changed

        for target in targets(world):
            figures["forms"] += 1
            fields = fields_of(target)
            plan = []
            for name, field in fields.items():
                figures["fields"] += 1
                for value, may_be_valid in hostile_values(field, small=args.small):
                    plan.append((may_be_valid, name, field, value))
            plan.sort(key=lambda item: item[0])  # surely invalid first
            # Whole-body faults first: not UTF-8, and a charset Python may not know.
            valid = target.data()
            encoded = "&".join(f"{k}={v}" for k, v in valid.items() if isinstance(v, str))
            if submit(
                target,
                "body not UTF-8",
                body=(encoded + "&note=%FF%FE%C0%AF").encode(),
                content_type="application/x-www-form-urlencoded",
            ):
                continue
            if submit(
                target,
                "body in latin-9",
                body=encoded.encode(),
                content_type="application/x-www-form-urlencoded; charset=latin-9",
            ):
                continue
            for _, name, field, value in plan:
                data = target.data()
                label = f"{name}={value!r:.40}"
                from django import forms

                if isinstance(field, forms.FileField):
                    filename, content = FILES[value]
                    body, content_type = multipart(data, [(name, filename, content)])
                    changed = submit(target, label, body=body, content_type=content_type)
                else:
                    if value is None:
                        data.pop(name, None)
                    else:
                        data[name] = value
                    changed = submit(target, label, data)
                if changed:
                    break  # the case (or the record) moved on: the rest would test nothing

        # The login form last: failed logins lock out (django-axes) whoever they name.
        login = Target("login", "/login/", None, None, lambda: {"username": "x", "password": "y"})
        anonymous = Browser(stack.base)
        clients[None] = anonymous
        for field in ("username", "password"):
            for value in ("\x00", "A" * 100_000, ["a", "b"], ""):
                submit(
                    login,
                    f"{field}={value!r:.20}",
                    {"username": "nobody", "password": "x", field: value},
                )
        for line in details:
            print(line)
        failures = []
        if figures["errors_500"]:
            failures.append(f"{figures['errors_500']} submission(s) answered 500")
        if figures["partial_writes"]:
            failures.append(f"{figures['partial_writes']} refused submission(s) changed data")
        if failures:
            stack.tail_logs()
        raise SystemExit(report("form_fuzz", figures, failures))


if __name__ == "__main__":
    main()
