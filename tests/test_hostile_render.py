"""Hostile text in every field a person (or an import, or a login form) can fill, and every
page drawn as every role and every Django admin page as a superuser: nothing comes back
unescaped, and no CSV cell starts a formula.

The text goes in the way people put it in where that is possible (the step forms, the money
forms, the start page, the withdraw and correction forms); what no page writes (partner
records, ledger lines, notifications, overrides, login attempts) is written with the ORM.
The pages are read from the URLconf, so a new page is covered without a change here; a
page whose address needs an argument this file cannot fill fails and says so.
"""

import csv
import datetime as dt
import io
import itertools
import re
import uuid
import zipfile
from decimal import Decimal, InvalidOperation

import pytest
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.html import escape

from offboarding.money.forms import MONEY_FORMS
from tests.factories import PartnerFactory, PayoutFactory
from tests.step_posts import CHECKLIST, LANE_USERS, step_post

pytestmark = pytest.mark.django_db

# What must never come back as it was typed. `{{ }}` and `{% %}` would vanish or change if
# text were ever rendered as a template; the escaped text is compared whole where it shows.
TAIL = ' <x>"\'& <script>alert(1)</script> {{ 1|add:1 }} {% now "Y" %}'
SHORT_TAIL = "<x>\"'&"
RAW_MARKERS = ("<x>", "<script>alert(1)", "&amp;lt;x&amp;gt;")  # the last: escaped twice
ESCAPED_MARKER = "&lt;x&gt;"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_prefixes = itertools.cycle(FORMULA_STARTS[:4])


def hostile(label: str, max_length: int = 1000) -> str:
    """A hostile value for a field of `max_length`, starting with a formula character."""
    value = f"{next(_prefixes)}{label}{TAIL}"
    if len(value) > max_length:
        value = f"{next(_prefixes)}{label}{SHORT_TAIL}"
    assert len(value) <= max_length, (label, max_length)
    return value


# Routes no sweep below requests, and why. Everything else in the URLconf is requested.
EXCLUDED = {
    "logout/": "logging out ends the session the sweep runs in",
    "admin/logout/": "logging out ends the session the sweep runs in",
    "evidence/<int:pk>/": "the uploaded file's own bytes; its missing-file page is checked",
    "admin/(?P<url>.*)$": "the admin's catch-all: every address it answers is a 404",
}
# Downloads: checked by opening them (CSV cells, the HTML inside ZIPs), not as pages.
DOWNLOADS = {
    "cases/<int:pk>/record.zip",
    "partners/<int:partner_pk>/case-records.zip",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


ALL_ROUTES = [route for route, _ in _walk(get_resolver().url_patterns)]
ARGUMENT = re.compile(r"<(?:\w+:)?(?P<name>\w+)>|\(\?P<(?P<regex_name>\w+)>[^)]*\)")


# ---- the hostile world ----


def _login_post(client, user, name, args, data, expect=302):
    client.force_login(user)
    response = client.post(reverse(name, args=args), data)
    body = response.content.decode()
    errors = re.findall(r"(?:invalid-feedback|errorlist|alert-danger)[^>]*>(.{0,300})", body)
    assert response.status_code == expect, (name, response.status_code, errors or body[:3000])
    # A refusal redirects too, with a warning: only a success counts.
    said = [(m.level, str(m)) for m in get_messages(response.wsgi_request)]
    assert said and all(level == messages.SUCCESS for level, _ in said), (name, said)
    return response


def _hostile_partner(roles, label, *, beta=True):
    partner = PartnerFactory(
        cam=roles["cam"],
        beta=beta,
        legal_name=hostile(f"{label}legal", 200),
        display_name=hostile(f"{label}name", 200),
        record_id=hostile(f"{label}r", 40),
        crm_account_id=hostile(f"{label}crm", 40),
        portal_partner_id=hostile(f"{label}pp", 40),
        program=hostile(f"{label}prog", 80),
        status_reason=hostile(f"{label}why", 300),
    )
    partner.licences.update(sku=hostile(f"{label}sku", 40), product_name=hostile("product", 200))
    partner.licences.create(sku=hostile(f"{label}sk2", 40), product_name=hostile("product2", 200))
    partner.referral_links.update(
        code=hostile(f"{label}link", 60), target_url="javascript:alert(1)//" + SHORT_TAIL
    )
    today = timezone.localdate()
    commission_model = apps.get_model("payouts", "Commission")
    order_model = apps.get_model("payouts", "Order")
    commission_model.objects.create(
        partner=partner,
        source=hostile("src", 40),
        reference=hostile(f"{label}cm", 80),
        period_start=today - dt.timedelta(days=40),
        period_end=today - dt.timedelta(days=10),
        earned_on=today - dt.timedelta(days=5),
        amount=Decimal("40.00"),
        currency="USD",
    )
    order_model.objects.create(
        partner=partner,
        reference=hostile(f"{label}or", 80),
        ordered_on=today - dt.timedelta(days=3),
        amount=Decimal("60.00"),
        currency="EUR",
    )
    for n in range(3):
        PayoutFactory(
            partner=partner,
            # 64: a batch payment's reference is the batch's, "/" and the payout's, in 80.
            reference=hostile(f"{label}po{n}", 64),
            description=hostile(f"{label}desc{n}", 200),
            amount=Decimal("100.00") + n,
        )
    return partner


def _upload(label):
    # A double quote cannot travel in a multipart file name; the rest of the marker can.
    return SimpleUploadedFile(f"=<x>'&{label}.pdf", b"%PDF-1.4 hostile", "application/pdf")


def _open_case(client, roles, partner):
    _login_post(
        client,
        roles["cam"],
        "start_offboarding",
        [partner.pk],
        {
            "initiated_by": "company",
            "reason": "other",
            "reason_detail": hostile("detail"),
            "request_received_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
            "request_channel": "internal_review",
            "note": hostile("opennote"),
            "evidence": _upload("open"),
        },
    )
    return partner.offboarding_cases.get()


def _money_post(case, **fields):
    return {"expected_state": case.state, "idempotency_key": str(uuid.uuid4()), **fields}


def _settle(client, roles, case, *, leave_open: bool):
    """Step 8 through the money forms, with hostile notes, reasons and references."""
    car = roles["car"]
    today = timezone.localdate().isoformat()
    order = apps.get_model("payouts", "Order").objects.get(partner=case.partner, status="open")
    outcome = {"outcome": "cancelled"} if leave_open else {"outcome": "closed"}
    _login_post(
        client,
        car,
        "resolve_order",
        [case.pk],
        _money_post(
            case, order=str(order.pk), note=hostile("ordernote", 300), override_reason="", **outcome
        ),
    )
    _login_post(client, car, "roll_up_commissions", [case.pk], {"expected_state": case.state})
    payouts = list(case.outstanding_payouts().order_by("pk"))
    _login_post(
        client,
        car,
        "void_payout",
        [case.pk],
        _money_post(case, payout=str(payouts[0].pk), reason=hostile("void", 300)),
    )
    rest = payouts[1:]
    first = rest[0]
    _login_post(
        client,
        car,
        "add_payment",
        [case.pk],
        _money_post(
            case,
            payout=str(first.pk),
            amount="1.00" if leave_open else str(first.amount),
            paid_on=today,
            method="wire",
            reference=hostile(f"payref{case.pk}", 80),
            override_reason="",
        ),
    )
    if not leave_open:
        _login_post(
            client,
            car,
            "pay_in_full",
            [case.pk],
            _money_post(
                case,
                payouts_to_pay=[str(p.pk) for p in rest[1:]],
                paid_on=today,
                method="ach",
                batch_reference=hostile(f"batch{case.pk}", 15),
            ),
        )


def _drive(client, roles, case, *, until: str):
    """Each step completed through its form by its lane's user, every text field hostile."""
    while case.state != until:
        number = int(case.state.split("_")[1])
        if number == 8:
            _settle(client, roles, case, leave_open=False)
        user = roles[sorted(LANE_USERS[number])[0]]
        data = step_post(case, number) | {"note": hostile(f"note{number}")}
        if "evidence" in data:
            data["evidence"] = _upload(f"step{number}")
        if number == 5:
            data |= {f"{item}_reference": hostile(f"ref{item}", 120) for item in CHECKLIST}
        _login_post(client, user, "complete_step", [case.pk, number], data)
        case.refresh_from_db()
    if until == "step_8":
        _settle(client, roles, case, leave_open=True)
    return case


@pytest.fixture
def world(client, roles):
    users = get_user_model().objects
    for key, user in roles.items():
        if key == "cam":
            # The CAM is shown by username (no names given), everyone else by name.
            user.username = hostile("cam", 150)
        else:
            user.first_name = hostile(f"{key}first", 150)
            user.last_name = hostile(f"{key}last", 150)
        user.email = f"{key}@example.com"
        user.save()
    superuser = users.create_superuser(
        hostile("root", 150), "root@example.com", "pw", first_name=hostile("rootfirst", 150)
    )

    at_step_8 = _drive(
        client, roles, _open_case(client, roles, _hostile_partner(roles, "A")), until="step_8"
    )
    done = _drive(
        client, roles, _open_case(client, roles, _hostile_partner(roles, "B")), until="done"
    )

    withdrawn = _open_case(client, roles, _hostile_partner(roles, "C", beta=False))
    _login_post(
        client,
        roles["cam"],
        "withdraw_case",
        [withdrawn.pk],
        {"expected_state": withdrawn.state, "reason": hostile("withdraw")},
    )
    at_step_10 = _drive(
        client, roles, _open_case(client, roles, _hostile_partner(roles, "D")), until="step_10"
    )
    _login_post(
        client,
        roles["salesops"],
        "correct_portal",
        [at_step_10.pk],
        {"expected_state": at_step_10.state, "portal": "legacy", "reason": hostile("portal")},
    )
    _hostile_partner(roles, "E")  # a partner with no case: its start page

    override_model = apps.get_model("payouts", "GuardOverride")
    payout = at_step_8.outstanding_payouts().first()
    for status, refused_by in (("pending", None), ("refused", roles["car2"])):
        override_model.objects.create(
            partner=at_step_8.partner,
            case=at_step_8,
            payout=payout,
            amount=payout.amount,
            currency=payout.currency,
            reference=hostile("ovref", 80),
            reason=hostile("override"),
            requested_by=roles["car"],
            status=status,
            refused_by=refused_by,
            refusal_reason=hostile("refusal") if refused_by else "",
        )

    notification_model = apps.get_model("notifications", "Notification")
    for user in [*roles.values(), superuser]:
        notification_model.objects.create(
            recipient=user,
            kind="step_assigned",
            case=at_step_8,
            title=hostile("title", 200),
            body=hostile("body"),
            email_error=hostile("mailerror"),
        )
    apps.get_model("notifications", "NotificationPreference").objects.create(
        user=roles["cam"], kind="reminder", delivery="in_app"
    )
    apps.get_model("axes", "AccessAttempt").objects.create(
        username=hostile("axesuser", 150),
        user_agent=hostile("agent", 255),
        ip_address="10.0.0.1",
        path_info=hostile("path", 255),
        get_data=hostile("get"),
        post_data=hostile("post"),
        failures_since_start=1,
    )
    for model_name in ("AccessLog", "AccessFailureLog"):
        apps.get_model("axes", model_name).objects.create(
            username=hostile(f"{model_name}user", 150),
            user_agent=hostile("agent", 255),
            ip_address="10.0.0.2",
            path_info=hostile("path", 255),
        )
    apps.get_model("otp_totp", "TOTPDevice").objects.create(
        user=roles["car2"], name=hostile("device", 64), confirmed=True
    )

    # One evidence file gone from storage: its "missing" page names it.
    evidence = apps.get_model("offboarding", "EvidenceFile").objects.order_by("pk").first()
    evidence.file.storage.delete(evidence.file.name)

    cases = [at_step_8, done, withdrawn, at_step_10]
    return {
        "roles": roles,
        "superuser": superuser,
        "cases": cases,
        "at_step_8": at_step_8,
        "partners": [c.partner for c in cases]
        + list(apps.get_model("partners", "Partner").objects.filter(offboarding_cases=None)),
        "evidence": evidence,
    }


# ---- filling the addresses ----


def _admin_model(route):
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if not match:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


def _values(route, name, world):
    """Every value to try for URL argument `name` of `route` (several hostile objects)."""
    model = _admin_model(route)
    if name in ("object_id", "pk") and model is not None:
        rows = list(model.objects.order_by("-pk").values_list("pk", flat=True)[:3])
        assert rows, f"{route}: no {model._meta.label} in the hostile world; create one."
        return rows
    if route.startswith("admin/"):
        if name == "object_id" and route.startswith("admin/r/"):
            return [world["cases"][0].pk]
        if name == "content_type_id":
            return [ContentType.objects.get_for_model(world["cases"][0]).pk]
        if name == "id" and "auth/user" in route:
            return [world["roles"]["cam"].pk]
        if name == "app_label":
            return sorted({model._meta.app_label for model in admin.site._registry})
        if name == "transition_name":
            return [world["at_step_8"].current_step.transition]
    elif name == "pk":
        if route.startswith("cases/"):
            return [case.pk for case in world["cases"]]
        if route.startswith("partners/"):
            return [partner.pk for partner in world["partners"]]
        if route.startswith("evidence/"):
            return [world["evidence"].pk]
        if route.startswith("inbox/"):
            notifications = apps.get_model("notifications", "Notification").objects
            return list(
                notifications.filter(title__contains=SHORT_TAIL).values_list("pk", flat=True)
            )
        if route.startswith("overrides/"):
            return list(world["at_step_8"].guard_overrides.values_list("pk", flat=True))
    elif name == "partner_pk":
        return [partner.pk for partner in world["partners"]]
    elif name == "step_number":
        return [world["at_step_8"].current_step.number]
    elif name == "form_name":
        return sorted(MONEY_FORMS)
    raise AssertionError(
        f"tests/test_hostile_render.py cannot fill <{name}> in {route!r}: add it to _values() "
        "with the id of a hostile object (or, with a reason, to EXCLUDED)."
    )


def _urls(route, world):
    """The addresses of `route` for every combination of its arguments' values."""
    names = [m.group("name") or m.group("regex_name") for m in ARGUMENT.finditer(route)]
    urls = ["/" + route.replace("^", "").replace("$", "")]
    for name in names:
        values = _values(route, name, world)
        pattern = re.compile(rf"<(?:\w+:)?{name}>|\(\?P<{name}>[^)]*\)")
        urls = [pattern.sub(str(value), url, count=1) for url in urls for value in values]
    return urls


def _query_variants(url):
    """The address as linked, and with hostile filters, pages and `next` to reflect."""
    mark = hostile("query")
    return [
        url,
        f"{url}?q={mark}&state={mark}&lane={mark}&status={mark}&tier={mark}&page={mark}"
        f"&next={mark}&history=all",
    ]


# ---- the checks ----


# Django's own page escapes the username in its title before the template escapes it again
# (django/contrib/auth/admin.py, user_change_password): shown garbled, never unescaped.
ESCAPED_TWICE_BY_DJANGO = re.compile(r"^/admin/auth/user/\d+/password/$")


def assert_escaped(response, where):
    body = response.content.decode(errors="replace")
    markers = RAW_MARKERS
    if ESCAPED_TWICE_BY_DJANGO.match(response.wsgi_request.path):
        markers = RAW_MARKERS[:2]
    for raw in markers:
        assert raw not in body, f"{where}: {raw!r} comes back unescaped:\n{_around(body, raw)}"
    assert 'href="javascript:' not in body.lower(), f"{where}: a javascript: link"


def _around(body, needle):
    index = body.find(needle)
    return body[max(0, index - 300) : index + 300]


def assert_no_formula(text, where):
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                try:
                    Decimal(cell)  # a negative amount is a number, not a formula
                except InvalidOperation:
                    pytest.fail(f"{where}: the cell {cell!r} starts a formula")


def _check_download(response, where):
    assert response.status_code == 200, (where, response.status_code)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response["Content-Type"].startswith("text/csv"):
        assert_no_formula(content.decode(), where)
        return 1
    checked = 0
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            member = archive.read(name).decode(errors="replace")
            if name.endswith(".csv"):
                assert_no_formula(member, f"{where} {name}")
                checked += 1
            elif name.endswith(".html"):
                for raw in RAW_MARKERS:
                    assert raw not in member, f"{where} {name}: {raw!r} unescaped"
                assert ESCAPED_MARKER in member, f"{where} {name} shows no hostile text"
                checked += 1
    return checked


def _site_routes():
    skipped = set(EXCLUDED) | DOWNLOADS
    return [r for r in ALL_ROUTES if not r.startswith("admin/") and r not in skipped]


def test_the_exclusions_name_existing_routes():
    assert set(EXCLUDED) | DOWNLOADS <= set(ALL_ROUTES)


def test_every_page_as_every_role_escapes_hostile_text(client, world):
    users = [*world["roles"].values(), world["superuser"]]
    requested = 0
    for route in _site_routes():
        for url in _urls(route, world):
            for address in _query_variants(url):
                for user in users:
                    client.force_login(user)
                    response = client.get(address)
                    # /healthz answers 503 while no worker has beaten, as it should.
                    ok = response.status_code < 500 or route == "healthz"
                    assert ok, (address, user.pk, response.status_code)
                    assert_escaped(response, f"GET {address} as user {user.pk}")
                    requested += 1
    assert requested > 100


def test_every_form_post_re_drawn_with_hostile_input_escapes_it(client, world):
    """Every address POSTed with hostile text in every field a form of the app has: a form
    drawn again with its errors shows what was sent, escaped."""
    mark = hostile("posted")
    names = (
        *("note", "reason", "reason_detail", "reference", "batch_reference", "override_reason"),
        *("amount", "paid_on", "notice_date", "requested_exit_date", "request_received_on"),
        *("portal", "payout", "token", "kind", "next"),
        *(f"{item}_reference" for item in CHECKLIST),
    )
    fields = dict.fromkeys(names, mark)
    users = [*world["roles"].values(), world["superuser"]]
    for route in _site_routes():
        for url in _urls(route, world):
            for user in users:
                client.force_login(user)
                case = world["at_step_8"]
                case.refresh_from_db()
                # The case's current state, so the forms are validated rather than sent back.
                data = fields | {"expected_state": case.state, "idempotency_key": uuid.uuid4()}
                response = client.post(url, data)
                assert response.status_code < 500, (url, user.pk, response.status_code)
                assert_escaped(response, f"POST {url} as user {user.pk}")


def test_every_admin_page_escapes_hostile_text(client, world):
    client.force_login(world["superuser"])
    requested = 0
    for route in ALL_ROUTES:
        if not route.startswith("admin/") or route in EXCLUDED:
            continue
        for url in _urls(route, world):
            response = client.get(url)
            assert response.status_code < 500, (url, response.status_code)
            assert_escaped(response, f"GET {url}")
            requested += 1
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(changelist, {"q": hostile("adminq"), "o": "1"})
        assert response.status_code < 500, (changelist, response.status_code)
        assert_escaped(response, f"GET {changelist}?q=…")
    assert requested > 50


SHOWN = [
    ("partner_detail", "manager", ("display_name", "legal_name", "record_id")),
    ("partner_list", "manager", ("display_name",)),
    ("case_detail", "car", ("reason_detail", "history_note", "payment_reference")),
    ("case_detail", "cam", ("reason_detail", "history_note", "evidence_name")),
    ("case_list", "manager", ("display_name",)),
    ("inbox", "car", ("notification_title",)),
    ("final_statement", "car", ("payment_reference", "void_reason")),
    ("car_console", "car", ("display_name", "override_reason")),
    ("my_work", "car", ("display_name",)),  # step 8 is CAR's
]


def test_pages_that_show_the_hostile_text_show_it_escaped_and_whole(client, world):
    """The sweeps above would pass on pages that show nothing: these pages must show the
    text, escaped, exactly as it was typed ({{ }} and {% %} left as they are)."""
    case = world["at_step_8"]
    case.refresh_from_db()
    payment = apps.get_model("payouts", "Payment").objects.filter(case=case).first()
    voided = apps.get_model("payouts", "Payout").objects.get(partner=case.partner, status="void")
    event = case.events.exclude(note="").order_by("pk").first()
    evidence = apps.get_model("offboarding", "EvidenceFile").objects.filter(event__case=case)
    values = {
        "display_name": case.partner.display_name,
        "legal_name": case.partner.legal_name,
        "record_id": case.partner.record_id,
        "reason_detail": case.reason_detail,
        "history_note": event.note,
        "payment_reference": payment.reference,
        "void_reason": voided.void_reason,
        "evidence_name": evidence.order_by("pk").last().original_name,
        "override_reason": case.guard_overrides.get(status="pending").reason,
    }
    args = {"partner_detail": [case.partner.pk], "case_detail": [case.pk]}
    args["final_statement"] = [case.pk]
    missing = []
    for page, username, shown in SHOWN:
        user = world["roles"][username]
        values["notification_title"] = user.notifications.first().title
        client.force_login(user)
        response = client.get(reverse(page, args=args.get(page, [])))
        assert response.status_code == 200, (page, username)
        assert_escaped(response, page)
        body = response.content.decode()
        missing += [(page, username, f) for f in shown if escape(values[f]) not in body]
    assert not missing, f"pages that do not show the hostile text, escaped and whole: {missing}"


def test_downloads_write_no_formula_and_escape_their_html(client, world):
    checked = 0
    client.force_login(world["roles"]["manager"])
    for case in world["cases"]:
        checked += _check_download(
            client.get(reverse("final_statement", args=[case.pk]), {"format": "csv"}),
            f"statement CSV of case {case.pk}",
        )
        checked += _check_download(
            client.get(reverse("case_record_export", args=[case.pk])), f"record of {case.pk}"
        )
    for partner in world["partners"][:4]:
        checked += _check_download(
            client.get(reverse("partner_records_export", args=[partner.pk])),
            f"records of partner {partner.pk}",
        )
    assert checked >= 12
    for route in DOWNLOADS:
        assert any(route == r for r in ALL_ROUTES)
