"""The benchmark app: the data generator (at a tiny size), its refusal to write outside a
*bench* database, the floor page and the request-cost headers (only where the bench settings
install them), the page plan with its peers, and how the run reads its figures against
issue 16's targets.

The test settings do not install the app, as the base settings do not; `bench_installed`
gives a test the settings partnerops.settings.bench adds. Timings are not tested here:
`make bench-smoke` runs the whole benchmark at tiny sizes.
"""

import ast
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from accounts.roles import sync_roles
from bench import run
from bench.data import (
    BenchDataError,
    CasePlan,
    Generator,
    PartnerPlan,
    PayoutPlan,
    Sizes,
    generate,
)
from notifications.models import Notification
from offboarding.models import Case, CaseEvent
from offboarding.process import CLOSED_STATES
from partners.models import Partner
from payouts.models import Payment, Payout
from payouts.selectors import final_statement, money_on_the_table, payments_after_offboard_date
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent

TINY = Sizes(
    partners=60,
    closed_cases=90,
    open_cases=30,
    commissions=900,
    payouts=260,
    notifications=300,
    long_history=40,
    statement_lines=25,
    seed=7,
)


@pytest.fixture
def not_named_bench(monkeypatch):
    """The commands read the database's name from the connection's settings; the test
    database may itself be named *bench*, so the refusals are tested on a name that is not."""
    monkeypatch.setitem(connection.settings_dict, "NAME", "partnerops")


@pytest.fixture
def bench_installed(settings):
    """What partnerops.settings.bench adds to the settings: the app, its request-cost
    middleware and its URLconf (test_bench_settings_add_the_app_and_nothing_else checks it)."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "bench"]
    settings.MIDDLEWARE = ["bench.middleware.RequestCostMiddleware", *settings.MIDDLEWARE]
    settings.ROOT_URLCONF = "bench.urls"


# ---- where the app is installed, and who imports it


def test_the_product_settings_and_urls_carry_no_bench():
    assert "bench" not in django_settings.INSTALLED_APPS
    assert not any(name.startswith("bench.") for name in django_settings.MIDDLEWARE)
    assert django_settings.ROOT_URLCONF == "partnerops.urls"
    with pytest.raises(NoReverseMatch):
        reverse("bench_floor")


def test_bench_settings_add_the_app_and_nothing_else():
    """partnerops.settings.bench is the production settings plus the app, its middleware
    (outermost) and its URLconf, with every product URL still served."""
    script = (
        "import django, json; django.setup();"
        "from django.conf import settings; from django.urls import reverse;"
        "print(json.dumps([settings.INSTALLED_APPS, settings.MIDDLEWARE, settings.ROOT_URLCONF,"
        " reverse('bench_floor'), reverse('my_work'), reverse('admin:index')]))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "partnerops.settings.bench",
        "DJANGO_SECRET_KEY": "bench-test-" + "x" * 40,
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    installed, middleware, urlconf, floor, my_work, admin = json.loads(result.stdout)
    assert installed == [*django_settings.INSTALLED_APPS, "bench"]
    assert middleware == ["bench.middleware.RequestCostMiddleware", *django_settings.MIDDLEWARE]
    assert (urlconf, floor, my_work, admin) == ("bench.urls", "/bench/floor/", "/work/", "/admin/")


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_outside_the_bench_app_imports_it():
    """bench may import the product; the product, scripts and other tests never import bench."""
    importers = []
    skipped = {"bench", "var", "staticfiles", "node_modules"}
    tops = [top for top in ROOT.iterdir() if top.is_dir() and not top.name.startswith(".")]
    paths = [
        *ROOT.glob("*.py"),
        *(p for top in tops if top.name not in skipped for p in top.rglob("*.py")),
    ]
    for path in paths:
        relative = path.relative_to(ROOT)
        if "migrations" in relative.parts or relative == Path("partnerops/settings/bench.py"):
            continue
        if any(name == "bench" or name.startswith("bench.") for name in _imports_of(path)):
            importers.append(str(relative))
    assert importers == []


# ---- the commands


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["generate_bench_data", "bench_backend"])
def test_bench_commands_refuse_a_database_not_named_bench(
    bench_installed, not_named_bench, command
):
    with pytest.raises(CommandError, match="must contain 'bench'"):
        call_command(command)
    assert not Partner.objects.exists()


@pytest.mark.django_db
def test_explain_pages_refuses_a_database_not_named_bench(
    bench_installed, not_named_bench, tmp_path
):
    plan = tmp_path / "pages.json"
    plan.write_text('[{"name": "my_work", "path": "/work/", "user": "cam"}]')
    with pytest.raises(CommandError, match="database named \\*bench\\*"):
        call_command("explain_pages", plan=str(plan))


def test_the_bench_commands_exist_only_where_the_app_is_installed():
    with pytest.raises(CommandError, match="Unknown command"):
        call_command("generate_bench_data")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "message"),
    [("yesterday", "not an ISO 8601 date and time"), ("2026-11-24T12:00", "has no time zone")],
)
def test_generate_bench_data_refuses_a_bad_moment(bench_installed, not_named_bench, given, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_bench_data", "--now", given)
    assert not Partner.objects.exists()


# ---- the generator


@pytest.fixture
def dataset(db):
    sync_roles(apps)
    return generate(TINY, out=lambda message: None, background=False, vacuum=False)


@pytest.mark.postgres
def test_generator_fills_every_table_at_the_requested_sizes(dataset):
    assert Partner.objects.count() == TINY.partners
    assert Case.objects.filter(state__in=CLOSED_STATES).count() == TINY.closed_cases
    assert Case.objects.exclude(state__in=CLOSED_STATES).count() == TINY.open_cases
    assert Notification.objects.count() == TINY.notifications
    # The ledger: the payouts asked for (a guard exception or two on top), all paid for.
    assert TINY.payouts <= Payout.objects.count() <= TINY.payouts + 2
    assert Payment.objects.count() >= Payout.objects.filter(status="paid").count()
    assert dataset["counts"]["commissions"] == TINY.commissions
    assert get_user_model().objects.filter(username="cam").exists()


@pytest.mark.postgres
def test_generated_cases_are_what_the_services_would_have_left(dataset):
    open_cases = Case.objects.exclude(state__in=CLOSED_STATES).select_related("partner")
    # Every step of the process has open cases, and all have a clock.
    assert {case.state for case in open_cases} == {f"step_{n}" for n in range(2, 14)}
    assert not open_cases.filter(step_due_at__isnull=True).exists()
    assert open_cases.filter(step_escalated_at__isnull=False).exists()  # some overdue
    for case in open_cases:
        assert case.partner.status == "offboarding"
        last = case.events.order_by("created_at", "pk").last()
        assert last.to_state == case.state
        step = int(case.state.removeprefix("step_"))
        if step == 8:
            assert money_on_the_table(case.partner)  # what step 8 is there to pay
        if step >= 9:
            assert not money_on_the_table(case.partner)  # paid, verified
    for partner in Partner.objects.filter(status="offboarded"):
        assert not money_on_the_table(partner)
        assert partner.offboarding_cases.order_by("opened_at").last().state == "done"
    # Four eyes: step 9 never recorded by someone who paid on the case.
    for event in CaseEvent.objects.filter(kind="step_completed", step_number=9):
        assert not Payment.objects.filter(case=event.case, recorded_by=event.actor).exists()
    # The payment guard: anything paid after an offboard date carries an override.
    late = list(payments_after_offboard_date())
    assert late and all(payment.override_id for payment in late)


@pytest.mark.postgres
def test_generated_histories_are_sealed_hash_chains(dataset):
    """The generator seals its events as CaseEvent.save does: verify_case_records passes."""
    from offboarding.case_chain import verify_case

    cases = Case.objects.values_list("pk", "state")
    assert cases.count() == TINY.closed_cases + TINY.open_cases
    broken = [
        (pk, result.broken)
        for pk, state in cases
        if not (result := verify_case(pk, state, check_files=False)).intact
    ]
    assert broken == []


def _plan_ids(dataset) -> dict:
    """What run.subject_ids reads over its own connection, read through the ORM."""
    users = get_user_model().objects
    return {
        "cam": users.get(username="cam").pk,
        "manager": users.get(username="manager").pk,
        "statement_partner": Case.objects.get(
            pk=dataset["targets"]["statement"]["case"]
        ).partner_id,
    }


@pytest.mark.postgres
def test_every_page_of_the_plan_and_every_peer_answers_on_the_generated_data(
    dataset, bench_installed, client
):
    targets = dataset["targets"]
    statement_case = Case.objects.get(pk=targets["statement"]["case"])
    assert statement_case.state == "step_9"
    assert len(final_statement(statement_case).lines) == TINY.statement_lines
    long_case = Case.objects.get(pk=targets["case_detail"]["case"])
    assert long_case.state == "step_8"
    assert long_case.events.count() >= TINY.long_history - 10
    cam = get_user_model().objects.get(username="cam")
    assert targets["my_work"]["partners"] == Partner.objects.filter(cam=cam).count()

    plan = run.page_plan(dataset, _plan_ids(dataset), "2100-01-01T00:00:00+00:00")
    ours = [page for page in plan if page["kind"] == "page"]
    peers = {page["name"]: page for page in plan if page["kind"] == "peer"}
    assert {page["peer"] for page in ours} == set(peers)  # every page has its own peer
    assert all(peers[page["peer"]]["of"] == page["name"] for page in ours)
    for page in plan:
        client.force_login(get_user_model().objects.get(username=page["user"]))
        response = client.get(page["path"])
        # A filter the admin does not allow redirects (?e=1); a peer must list, not refuse.
        assert response.status_code == 200, page
        assert int(response["X-Query-Count"]) > 0
    # The peers filter what the pages show: the admin lists cam's partners and the
    # statement partner's payouts (fewer than the admin's 100 a page, all on the first).
    client.force_login(get_user_model().objects.get(username="admin"))
    assert _listed(client, peers["admin_partners_of_cam"]["path"]) == set(
        Partner.objects.filter(cam=cam).values_list("pk", flat=True)
    )
    assert _listed(client, peers["admin_payouts_of_partner"]["path"]) == set(
        Payout.objects.filter(partner=statement_case.partner).values_list("pk", flat=True)
    )


def _listed(client, changelist: str) -> set[int]:
    """The rows of an admin change list, by the primary keys its rows link to."""
    html = client.get(changelist).content.decode()
    base = changelist.split("?")[0]
    return {int(pk) for pk in re.findall(rf'href="{re.escape(base)}(\d+)/change/', html)}


# ---- the floor page and the request-cost headers


@pytest.mark.django_db
def test_floor_page_needs_a_login(bench_installed, client):
    url = reverse("bench_floor")
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login")) and "next=" in response.url


@pytest.mark.django_db
def test_floor_page_runs_one_query_of_its_own_and_counts_them_all(bench_installed, client):
    client.force_login(UserFactory())
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("bench_floor"))
    assert response.status_code == 200
    assert b"Floor" in response.content
    assert int(response["X-Query-Count"]) == len(queries.captured_queries)
    assert sum("offboarding_case" in query["sql"] for query in queries.captured_queries) == 1
    timing = run.server_timing(response["Server-Timing"])
    assert set(timing) == {"app", "db"}
    assert 0 < timing["db"] < timing["app"]


@pytest.mark.django_db
def test_product_pages_send_no_cost_headers_without_the_bench_settings(client):
    client.force_login(UserFactory())
    response = client.get(reverse("my_work"))
    assert "X-Query-Count" not in response and "Server-Timing" not in response


@pytest.mark.parametrize(
    "header, durations",
    [
        ("app;dur=12.500, db;dur=4.125", {"app": 12.5, "db": 4.125}),
        ("db;dur=0.000,app;dur=3", {"app": 3.0, "db": 0.0}),
        ("app;dur=abc, db;dur=1.5", {"db": 1.5}),  # a metric it cannot read is left out
        ("cache;desc=hit, app;dur=2", {"app": 2.0}),
        ("", {}),
        (None, {}),
    ],
)
def test_server_timing_header_is_read_metric_by_metric(header, durations):
    assert run.server_timing(header) == durations


# ---- the same seed, the same data; a quarter of it


def _planned(now, *, users_of=None):
    """A generator that has planned TINY's partners, cases and ledger as of `now`."""
    generator = Generator(TINY, out=lambda message: None, background=False, vacuum=False, now=now)
    if users_of is None:
        sync_roles(apps)
        generator.make_users()
    else:  # the users are in the database already
        for name in ("users", "cams", "managers", "cars"):
            setattr(generator, name, getattr(users_of, name))
    generator.plan_partners()
    generator.plan_cases()
    generator.plan_ledger()
    return generator


def _rows(plans) -> list[tuple]:
    """Plans as plain tuples, a plan they point to by its id (they point at each other)."""

    def plain(value):
        if isinstance(value, PartnerPlan | CasePlan | PayoutPlan):
            return (type(value).__name__, value.id)
        if dataclasses.is_dataclass(value):
            return tuple(plain(getattr(value, f.name)) for f in dataclasses.fields(value))
        if isinstance(value, list | tuple):
            return tuple(plain(item) for item in value)
        if isinstance(value, dict):
            return tuple((key, plain(item)) for key, item in sorted(value.items()))
        return value

    return [tuple(plain(getattr(plan, f.name)) for f in dataclasses.fields(plan)) for plan in plans]


@pytest.mark.django_db
def test_the_same_seed_and_moment_plan_the_same_data_set():
    moment = dt.datetime(2026, 11, 24, 2, 48, tzinfo=dt.UTC)
    first = _planned(moment)
    again = _planned(moment + dt.timedelta(seconds=30), users_of=first)  # the same minute
    for plans in ("partners", "cases", "payouts"):
        assert _rows(getattr(again, plans)) == _rows(getattr(first, plans))
    a_week_later = _planned(moment + dt.timedelta(days=7), users_of=first)
    assert _rows(a_week_later.cases) != _rows(first.cases)  # every date moved


@pytest.mark.parametrize("sizes", [run.FULL_SIZES, run.SMOKE_SIZES])
def test_a_quarter_has_a_quarter_of_the_tables_and_the_same_page_subjects(sizes):
    quarter = run.quarter_of(sizes)
    for table in run.SCALED:
        assert quarter[table] == sizes[table] // 4
    for subject in ("long_history", "statement_lines", "seed"):
        assert quarter[subject] == sizes[subject]

    # `cam`'s partners, as the generator counts them (per 20,000 partners), are as many.
    def cam_partners(s):
        return round(s["cam_partners"] * s["partners"] / 20_000)

    assert cam_partners(quarter) == cam_partners(sizes)


@pytest.mark.django_db
@pytest.mark.parametrize("sizes", [run.SMOKE_SIZES, run.FULL_SIZES])
def test_the_generator_accepts_both_sizes_of_each_run(sizes):
    for wanted in (sizes, run.quarter_of(sizes)):
        Generator(Sizes(**wanted), out=lambda message: None).check()
    # What make bench-smoke measured before it ran two sizes had no room at a quarter.
    with pytest.raises(BenchDataError, match="too small for the statement"):
        Generator(Sizes(**run.quarter_of({**sizes, "payouts": 500})), out=print).check()


def test_the_quarter_database_is_named_after_the_full_one():
    url = "postgres://u:p@db:5433/partnerops_bench?sslmode=disable"
    assert run.quarter_url(url) == "postgres://u:p@db:5433/partnerops_bench_quarter?sslmode=disable"
    assert run.parse_args(["--database-url", url]).quarter_database_url == run.quarter_url(url)


# ---- the targets


def _row(name, *, queries=6, quarter_queries=6, vs_peer=0.5, vs_floor=2.0, vs_quarter=1.0):
    return {
        "name": name,
        "kind": "floor" if name == "floor" else "page",
        "peer": None if name == "floor" else f"admin_{name}",
        "queries": queries,
        "quarter_queries": quarter_queries,
        "vs_peer": vs_peer,
        "vs_floor": vs_floor,
        "vs_quarter": vs_quarter,
    }


def _report(rows, *, sizes=("full", "quarter"), sweep_ms=1.0, open_steps=100_000, rss=70.0):
    return {
        "config": {"sizes_measured": list(sizes)},
        "rows": rows,
        "backend": {"sweep": {"none_due": {"median_ms": sweep_ms}, "open_steps": open_steps}},
        "gunicorn_rss": {"full": {"max_worker_mb": rss}},
    }


def _holds(report) -> dict[str, bool]:
    return {check["target"]: check["holds"] for check in run.targets_check(report)}


def test_targets_hold_on_the_line_and_miss_just_past_it():
    report = _report(
        [
            _row("floor", queries=40, vs_peer=None, vs_quarter=9.0),  # not held to them
            _row(
                "my_work",
                queries=12,
                quarter_queries=12,
                vs_peer=1.0,
                vs_floor=8.0,
                vs_quarter=1.25,
            ),
            _row(
                "inbox",
                queries=13,
                quarter_queries=12,
                vs_peer=1.01,
                vs_floor=8.01,
                vs_quarter=1.26,
            ),
        ]
    )
    sweep = "sweep, none due, < 50 ms at 100,000 open steps (measured at 100,000)"
    assert _holds(report) == {
        "my_work: queries <= 12": True,
        "my_work: the same queries on a quarter of the data": True,
        "my_work: p50 no slower than the peer (admin_my_work)": True,
        "my_work: p50 <= 8x floor": True,
        "my_work: p50 at full <= 1.25x at a quarter": True,
        "inbox: queries <= 12": False,
        "inbox: the same queries on a quarter of the data": False,
        "inbox: p50 no slower than the peer (admin_inbox)": False,
        "inbox: p50 <= 8x floor": False,
        "inbox: p50 at full <= 1.25x at a quarter": False,
        sweep: True,
        "worker RSS < 200 MB": True,
    }


def test_a_missing_figure_never_holds():
    report = _report(
        [
            _row(
                "my_work",
                queries=None,
                quarter_queries=None,
                vs_peer=None,
                vs_floor=None,
                vs_quarter=None,
            )
        ],
        rss=None,
    )
    holds = _holds(report)
    assert not any(value for target, value in holds.items() if target.startswith("my_work"))
    assert holds["worker RSS < 200 MB"] is False


def test_the_sweep_target_needs_its_size_and_one_size_drops_the_scale_targets():
    report = _report([_row("my_work")], sizes=("full",), sweep_ms=1.0, open_steps=2_000)
    holds = _holds(report)
    assert holds["sweep, none due, < 50 ms at 100,000 open steps (measured at 2,000)"] is False
    assert not [target for target in holds if "quarter" in target]
    slow = _holds(_report([_row("my_work")], sweep_ms=50.0))
    assert slow["sweep, none due, < 50 ms at 100,000 open steps (measured at 100,000)"] is False
    assert _holds(_report([_row("my_work")], rss=200.0))["worker RSS < 200 MB"] is False


def test_compare_reads_each_page_against_its_peer_the_floor_and_its_quarter():
    def entry(size, name, kind, p50, queries=5, **extra):
        return {
            "size": size,
            "name": name,
            "kind": kind,
            "user": "cam",
            "path": "/",
            "p50_ms": p50,
            "queries": queries,
            **extra,
        }

    entries = [
        entry("full", "floor", "floor", 4.0),
        entry("quarter", "floor", "floor", 4.0),
        entry("full", "my_work", "page", 10.0, peer="admin_cam"),
        entry("quarter", "my_work", "page", 8.0, queries=5, peer="admin_cam"),
        entry("full", "admin_cam", "peer", 40.0, of="my_work"),
    ]
    rows = {row["name"]: row for row in run.compare(entries)}
    assert set(rows) == {"floor", "my_work"}  # the peer is a column, not a row
    mine = rows["my_work"]
    assert (mine["peer_p50_ms"], mine["vs_peer"], mine["vs_floor"]) == (40.0, 0.25, 2.5)
    assert (mine["quarter_p50_ms"], mine["quarter_queries"], mine["vs_quarter"]) == (8.0, 5, 1.25)


def test_a_page_slower_than_a_phase_is_measured_by_its_one_request_alone():
    args = types.SimpleNamespace(rounds=1, phase_seconds=3.0, warmup_seconds=0.5)
    slow = {"size": "full", "name": "admin_slow", "too_slow_to_drive": True, "first_ms": 4200.0}
    driven = {"size": "full", "name": "my_work", "too_slow_to_drive": False}
    # [name, phase, seconds into it, ms, bytes, status, Server-Timing]
    samples = [
        ["full:my_work", 0, 0.2, 99.0, 10, 200, None],  # warming up: not counted
        ["full:my_work", 0, 1.0, 10.0, 10, 200, "app;dur=8, db;dur=2"],
        ["full:my_work", 0, 2.0, 30.0, 10, 200, "app;dur=20, db;dur=5"],
        ["full:my_work", 0, 2.5, 20.0, 10, 500, None],  # an error: counted, not timed
    ]
    # A page whose requests all began in the warm-up is read from them, and says so.
    sluggish = {"size": "quarter", "name": "inbox", "too_slow_to_drive": False}
    samples.append(["quarter:inbox", 1, 0.1, 1900.0, 10, 200, None])
    run.summarise(args, [slow, driven, sluggish], samples)
    assert (slow["p50_ms"], slow["samples"], slow["p95_ms"]) == (4200.0, 1, None)
    assert (driven["p50_ms"], driven["samples"], driven["errors"]) == (20.0, 3, 1)
    assert (driven["app_p50_ms"], driven["db_p50_ms"], driven["rps"]) == (14.0, 3.5, 1.2)
    assert driven["warm_up_only"] is False
    assert (sluggish["p50_ms"], sluggish["samples"], sluggish["warm_up_only"]) == (1900.0, 1, True)
