"""`make bench` / `make bench-smoke`: PartnerOps at a large company's scale, against its peers.

1. Two data sets, each in its own PostgreSQL database whose name contains "bench": the full
   size and a quarter of it (the quarter's database is the full one's name + "_quarter";
   `--single-size` leaves it out). Each is generated once (manage.py generate_bench_data)
   and reused while its sizes match; a database holding other sizes is dropped and re-created.
2. Starts one gunicorn per data set with partnerops.settings.bench (the production settings
   plus the floor page and the request-cost headers), logs in as the roles, requests every
   page once (status, queries, size), then drives the pages with concurrent Locust users,
   one page at a time, in rounds: our pages and the floor at both sizes and, at the full
   size, each page's peer, the Django admin page a user would otherwise open for the same
   data, as the superuser.
3. Reads the workers' RSS, stops gunicorn, explains the full size's queries, and times the
   deadline sweep and the service path on the full data set (manage.py bench_backend).
4. Writes the results (JSON), prints the table and which of issue 16's targets hold. Every
   number comes from this run.

Usage: python -m bench.run [--smoke] [--database-url URL] [--single-size] [--out FILE] [...]
"""

import argparse
import http.client
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from contextlib import ExitStack
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "partnerops-demo"  # noqa: S105 - the demo users' published password
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/partnerops_bench"
SETTINGS = "partnerops.settings.bench"

FULL_SIZES = {
    "partners": 20_000,
    "closed_cases": 100_000,
    "open_cases": 5_000,
    "commissions": 1_000_000,
    "payouts": 200_000,
    "notifications": 200_000,
    "long_history": 1_000,
    "statement_lines": 500,
    "cam_partners": 350,
    "seed": 20_261_123,
}
# Large enough that a quarter of it still has room for the two special cases.
SMOKE_SIZES = {
    **FULL_SIZES,
    "partners": 400,
    "closed_cases": 600,
    "open_cases": 120,
    "commissions": 4_000,
    "payouts": 1_200,
    "notifications": 1_000,
    "long_history": 100,
    "statement_lines": 50,
}
# The tables a quarter data set holds a quarter of.
SCALED = ("partners", "closed_cases", "open_cases", "commissions", "payouts", "notifications")
OPEN_STATES = ",".join(f"step_{n}" for n in range(1, 14))
# The steps the CAR console lists (offboarding.money.console.MONEY_STATES).
CONSOLE_STATES = "step_7,step_8,step_9,step_11"
SIZE_NAMES = ("full", "quarter")
# Issue 16's targets ("Performance, restated"), checked against this run's figures.
TARGETS = {
    "queries": 12,
    "peer_ratio": 1.0,  # p50 / the peer's p50, same run
    "floor_ratio": 8.0,  # p50 / the floor's p50, same run
    "scale_ratio": 1.25,  # p50 on the full data set / p50 on a quarter of it
    "sweep_none_due_ms": 50.0,
    "sweep_open_steps": 100_000,
    "rss_mb": 200.0,
}


def say(message: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def quarter_of(sizes: dict) -> dict:
    """A quarter of every table. The pages' own subjects keep their size — `cam`'s partners
    (My work), the long-history case, the long statement — so a page that costs more at the
    full size does so because of the rest of the data, not its own."""
    quarter = dict(sizes)
    for key in SCALED:
        quarter[key] = sizes[key] // 4
    # cam_partners counts per 20,000 partners: four times the share on a quarter of the
    # partners is the same number of partners.
    quarter["cam_partners"] = sizes["cam_partners"] * 4
    return quarter


def quarter_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_quarter"))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, short phases")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument(
        "--quarter-database-url", default=None, help="default: the full one's name + _quarter"
    )
    parser.add_argument(
        "--single-size", action="store_true", help="the full size only (no scale ratio)"
    )
    parser.add_argument("--out", default=None, help="results file (JSON)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("BENCH_PORT", 8765)),
        help="the full size's gunicorn; the quarter's listens on the next port",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (as deployed)")
    parser.add_argument("--users", type=int, default=3, help="concurrent Locust users")
    parser.add_argument("--phase-seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup-seconds", type=float, default=None)
    parser.add_argument("--sweep-open", type=int, default=None)
    parser.add_argument("--service-cases", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.sizes = dict(SMOKE_SIZES if smoke else FULL_SIZES)
    if args.seed is not None:
        args.sizes["seed"] = args.seed
    defaults = {
        "database_url": DEFAULT_URL.replace("partnerops_bench", "partnerops_bench_smoke")
        if smoke
        else DEFAULT_URL,
        "out": "bench-results/smoke.json" if smoke else "bench-results/latest.json",
        # Many short rounds rather than a few long ones: the machine's speed drifts over
        # minutes, and a page compared with its peer and the floor measured seconds away
        # drifts less.
        "phase_seconds": 2.0 if smoke else 3.0,
        "rounds": 1 if smoke else 6,
        "warmup_seconds": 0.5,
        "sweep_open": 2_000 if smoke else TARGETS["sweep_open_steps"],
        "service_cases": 3 if smoke else 20,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup_seconds >= args.phase_seconds:
        parser.error("--warmup-seconds must be less than --phase-seconds")
    if args.quarter_database_url is None:
        args.quarter_database_url = quarter_url(args.database_url)
    return args


# ------------------------------------------------------------------------------ database


def db_params(url: str) -> dict:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"bench: {url} is not a PostgreSQL URL")
    return {
        "dbname": parts.path.lstrip("/"),
        "user": urllib.parse.unquote(parts.username or "postgres"),
        "password": urllib.parse.unquote(parts.password or "") or None,
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
    }


def connect(params: dict, dbname: str | None = None):
    values = {**params, "dbname": dbname or params["dbname"]}
    return psycopg2.connect(**{k: v for k, v in values.items() if v is not None})


def stored_meta(params: dict) -> dict | None:
    try:
        conn = connect(params)
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('partnerops_bench_meta')")
            if cursor.fetchone()[0] is None:
                return None
            cursor.execute("SELECT value FROM partnerops_bench_meta WHERE key = 'dataset'")
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def subject_ids(params: dict, meta: dict) -> dict:
    """The database ids the peers' filters name: the users by username, and the partner of
    the long statement's case."""
    conn = connect(params)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT username, id FROM auth_user WHERE username = ANY(%s)",
                [["cam", "manager"]],
            )
            ids = dict(cursor.fetchall())
            cursor.execute(
                "SELECT partner_id FROM offboarding_case WHERE id = %s",
                [meta["targets"]["statement"]["case"]],
            )
            ids["statement_partner"] = cursor.fetchone()[0]
    finally:
        conn.close()
    return ids


def recreate_database(params: dict):
    name = params["dbname"]
    conn = connect(params, "postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def manage(env, *args, quiet=False):
    command = [sys.executable, "manage.py", *args]
    # No shell: this interpreter, manage.py and the runner's own arguments.
    result = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=quiet, text=True, check=False
    )
    if result.returncode != 0:
        if quiet:
            print(result.stdout, result.stderr, file=sys.stderr)
        sys.exit(f"bench: {' '.join(args[:1])} failed (exit {result.returncode})")
    return result


def ensure_data(database_url: str, sizes: dict, env) -> dict:
    params = db_params(database_url)
    if "bench" not in params["dbname"]:
        sys.exit(
            f"bench: refusing to use the database {params['dbname']!r}: the benchmark database's"
            " name must contain 'bench' (set BENCH_DATABASE_URL)."
        )
    meta = stored_meta(params)
    if meta is not None and meta.get("sizes") == sizes:
        say(f"data set present in {params['dbname']} (generated {meta.get('generated_at')})")
        manage(env, "migrate", "--noinput", "-v0")
        return {"status": "reused", "meta": meta, "seconds": 0.0}
    say(f"{'re-creating' if meta else 'creating'} {params['dbname']} and generating the data set")
    started = time.monotonic()
    recreate_database(params)
    manage(env, "migrate", "--noinput", "-v0")
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in sizes.items()]
    manage(env, "generate_bench_data", *flags)
    meta = stored_meta(params)
    return {"status": "generated", "meta": meta, "seconds": round(time.monotonic() - started, 1)}


def vacuum_analyze(params: dict) -> float:
    """VACUUM (ANALYZE) the whole bench database; returns the seconds it took.

    Before the pages: every run plans with fresh statistics, whatever the last run's
    rolled-back sweep left behind (tens of thousands of partners and cases inserted, then
    rolled back, which makes the planner think the partner table is several times its
    size). After the backend timings: that space is marked free again for the next run."""
    started = time.monotonic()
    conn = connect(params)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    conn.close()
    return round(time.monotonic() - started, 1)


def static_is_current(static_root: Path) -> bool:
    """The manifest is newer than the project's static files and the last install."""
    manifest = static_root / "staticfiles.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [path for path in (ROOT / "static").rglob("*") if path.is_file()]
    sources += list(BIN.parent.glob(".*stamp"))
    return all(path.stat().st_mtime < built for path in sources)


# ---------------------------------------------------------------------------------- http


class Client:
    def __init__(self, port: int):
        self.port = port

    def request(self, method, path, *, cookie="", body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        all_headers = {"Cookie": cookie} if cookie else {}
        all_headers.update(headers or {})
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        return response, content, elapsed

    def login(self, username: str) -> str:
        response, _, _ = self.request("GET", "/login/")
        csrf = SimpleCookie(response.getheader("Set-Cookie") or "")["csrftoken"].value
        body = urllib.parse.urlencode(
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
        )
        response, _, _ = self.request(
            "POST",
            "/login/",
            cookie=f"csrftoken={csrf}",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        if response.status != 302 or "sessionid" not in cookies:
            sys.exit(f"bench: logging in as {username} failed (HTTP {response.status})")
        return f"sessionid={cookies['sessionid'].value}; csrftoken={csrf}"


def wait_until_up(client: Client, process, log: Path, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: gunicorn exited at start-up (see {log.relative_to(ROOT)})")
        try:
            response, _, _ = client.request("GET", "/login/")
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("bench: gunicorn did not answer in time")


def worker_rss(master_pid: int) -> dict:
    """VmRSS of the gunicorn master and of each of its workers, in MB."""

    def rss(pid) -> float | None:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == master_pid:
            value = rss(int(entry.name))
            if value is not None:
                workers.append(value)
    workers.sort()
    return {
        "master_mb": rss(master_pid),
        "workers_mb": workers,
        "max_worker_mb": max(workers) if workers else None,
    }


# ---------------------------------------------------------------------------------- pages


def page_plan(meta: dict, ids: dict, cutoff: str) -> list[dict]:
    """The floor, our pages and each page's peer: the Django admin page (as the superuser)
    that lists or shows the same data with the list filter closest to the page's."""
    targets = meta["targets"]
    admin = targets["admin_changelist"]["user"]
    overdue = urllib.parse.urlencode({"state__in": OPEN_STATES, "step_due_at__lt": cutoff})
    statement_case = targets["statement"]["case"]
    long_case = targets["case_detail"]["case"]
    partner = targets["partner_detail"]["partner"]
    ours = [
        ("my_work", "/work/", targets["my_work"]["user"]),
        ("case_list_overdue", "/cases/?state=open&overdue=1", targets["case_list_overdue"]["user"]),
        ("case_detail_long", f"/cases/{long_case}/", targets["case_detail"]["user"]),
        ("partner_detail", f"/partners/{partner}/", targets["partner_detail"]["user"]),
        ("car_console", "/car/", targets["car_console"]["user"]),
        ("inbox", "/inbox/", targets["inbox"]["user"]),
        ("final_statement", f"/cases/{statement_case}/statement/", targets["statement"]["user"]),
    ]
    peers = {
        "my_work": (
            "admin_partners_of_cam",
            f"/admin/partners/partner/?cam__id__exact={ids['cam']}",
        ),
        "case_list_overdue": ("admin_cases_overdue", f"/admin/offboarding/case/?{overdue}"),
        # A page about one record is compared with the change list filtered to it (the
        # issue's "change list on the same filter"): the admin's change form for the case
        # draws every event inline, a query each, far beyond a phase of the run.
        "case_detail_long": (
            "admin_case_of_page",
            f"/admin/offboarding/case/?id__exact={long_case}",
        ),
        "partner_detail": (
            "admin_partner_of_page",
            f"/admin/partners/partner/?id__exact={partner}",
        ),
        "car_console": (
            "admin_cases_money_steps",
            f"/admin/offboarding/case/?state__in={CONSOLE_STATES}",
        ),
        "inbox": (
            "admin_notifications_of_user",
            f"/admin/notifications/notification/?recipient__id__exact={ids['manager']}",
        ),
        "final_statement": (
            "admin_payouts_of_partner",
            f"/admin/payouts/payout/?partner__id__exact={ids['statement_partner']}",
        ),
    }
    plan = [
        {
            "name": "floor",
            "kind": "floor",
            "path": "/bench/floor/",
            "user": targets["floor"]["user"],
        }
    ]
    for name, path, user in ours:
        peer_name, peer_path = peers[name]
        plan.append({"name": name, "kind": "page", "path": path, "user": user, "peer": peer_name})
        plan.append(
            {"name": peer_name, "kind": "peer", "path": peer_path, "user": admin, "of": name}
        )
    return plan


def probe(client: Client, pages: list[dict], phase_seconds: float):
    """Each page once: it must answer 200; keep its query count, size and time. A page that
    takes longer than a phase would hold every user past its phase and leave the pages
    after it unmeasured, so it is marked to be left out of the load."""
    for page in pages:
        response, content, elapsed = client.request("GET", page["path"], cookie=page["cookie"])
        page["too_slow_to_drive"] = elapsed > phase_seconds
        if response.status != 200:
            sys.exit(
                f"bench: {page['name']} ({page['path']}, {page['size']} size) answered HTTP"
                f" {response.status}"
            )
        queries = response.getheader("X-Query-Count")
        page["queries"] = int(queries) if queries is not None else None
        page["bytes"] = len(content)
        page["first_ms"] = round(elapsed * 1000, 1)


def key(page: dict) -> str:
    return f"{page['size']}:{page['name']}"


def run_locust(args, entries: list[dict], work: Path) -> list:
    samples_path = work / "samples.json"
    plan_path = work / "plan.json"
    plan = {
        "pages": [{"name": key(e), "url": e["url"], "cookie": e["cookie"]} for e in entries],
        "phase_seconds": args.phase_seconds,
        "rounds": args.rounds,
        "samples": str(samples_path),
    }
    plan_path.write_text(json.dumps(plan))
    samples_path.unlink(missing_ok=True)
    total = args.phase_seconds * args.rounds * len(entries)
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--run-time",
        f"{int(total + 30)}s",
        "--host",
        f"http://127.0.0.1:{args.port}",  # each page's own URL names its size's server
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    say(
        f"load: {len(entries)} pages x {args.rounds} round(s) x {args.phase_seconds:g} s, "
        f"{args.users} concurrent users, {args.workers} gunicorn workers per size"
    )
    with open(work / "locust.log", "w") as log:
        # No shell: the venv's locust with the flags built above.
        result = subprocess.run(  # noqa: S603
            command,
            cwd=ROOT,
            env={**os.environ, "PARTNEROPS_BENCH_PLAN": str(plan_path)},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0 or not samples_path.exists():
        print((work / "locust.log").read_text()[-3000:], file=sys.stderr)
        sys.exit(f"bench: locust failed (exit {result.returncode})")
    return json.loads(samples_path.read_text())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def server_timing(header: str | None) -> dict[str, float]:
    """The durations (ms) of a Server-Timing header, by name: {"app": 12.5, "db": 4.1}.
    A metric without a readable duration is left out."""
    durations = {}
    for metric in (header or "").split(","):
        name, _, duration = metric.strip().partition(";dur=")
        try:
            durations[name] = float(duration)
        except ValueError:
            continue
    return durations


def summarise(args, entries: list[dict], samples: list) -> None:
    measured = args.rounds * (args.phase_seconds - args.warmup_seconds)
    for entry in entries:
        if entry["too_slow_to_drive"]:  # its one request, alone: kinder than under load
            entry.update(samples=1, errors=0, rps=None, app_p50_ms=None, db_p50_ms=None)
            entry.update(p50_ms=entry["first_ms"], p95_ms=None, mean_ms=entry["first_ms"])
            continue
        mine = [s for s in samples if s[0] == key(entry)]
        rows = [s for s in mine if s[2] >= args.warmup_seconds]
        # A page slow enough that no request began after the warm-up is read from the
        # requests of its warm-up rather than left without a figure; the table says so.
        entry["warm_up_only"] = bool(mine) and not rows
        if entry["warm_up_only"]:
            rows = mine
        times = [s[3] for s in rows if s[5] == 200]
        entry["samples"] = len(rows)
        entry["errors"] = sum(1 for s in rows if s[5] != 200)
        entry["p50_ms"] = round(percentile(times, 0.50), 2) if times else None
        entry["p95_ms"] = round(percentile(times, 0.95), 2) if times else None
        entry["mean_ms"] = round(statistics.fmean(times), 2) if times else None
        # How much of the latency is Django (app) and, of that, the database (db).
        timings = [server_timing(s[6]) for s in rows if s[5] == 200]
        for name in ("app", "db"):
            spent = [timing[name] for timing in timings if name in timing]
            entry[f"{name}_p50_ms"] = round(percentile(spent, 0.50), 2) if spent else None
        entry["rps"] = round(len(rows) / measured, 1) if measured > 0 else None


def _ratio(value, base):
    return round(value / base, 2) if value and base else None


def compare(entries: list[dict]) -> list[dict]:
    """One row per page of ours (the floor first): its full-size figures, its peer's p50,
    and its p50 and queries on the quarter data set, with the ratios the targets read."""
    by_key = {key(entry): entry for entry in entries}
    floor = by_key["full:floor"]
    rows = []
    for entry in entries:
        if entry["size"] != "full" or entry["kind"] == "peer":
            continue
        peer = by_key.get(f"full:{entry.get('peer')}")
        quarter = by_key.get(f"quarter:{entry['name']}")
        row = {
            field: entry.get(field)
            for field in (
                "name",
                "kind",
                "user",
                "path",
                "p50_ms",
                "p95_ms",
                "rps",
                "app_p50_ms",
                "db_p50_ms",
                "queries",
                "bytes",
                "samples",
            )
        }
        row["peer"] = entry.get("peer")
        row["peer_p50_ms"] = peer["p50_ms"] if peer else None
        row["vs_peer"] = _ratio(entry["p50_ms"], row["peer_p50_ms"])
        row["vs_floor"] = _ratio(entry["p50_ms"], floor["p50_ms"])
        row["quarter_p50_ms"] = quarter["p50_ms"] if quarter else None
        row["quarter_queries"] = quarter["queries"] if quarter else None
        row["vs_quarter"] = _ratio(entry["p50_ms"], row["quarter_p50_ms"])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------- report


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(
            line for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
        )
        memory_gb = round(int(memory.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        memory_gb = None
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def postgres_version(params) -> str:
    conn = connect(params)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def _check(target: str, value, holds: bool) -> dict:
    return {"target": target, "value": value, "holds": bool(holds)}


def targets_check(report: dict) -> list[dict]:
    """Issue 16's targets, each with this run's figure and whether it holds. The floor is
    the ratios' denominator, not a page held to them; the scale targets are left out of a
    run that measured one size only."""
    both_sizes = report["config"]["sizes_measured"] == list(SIZE_NAMES)
    checks = []
    for row in report["rows"]:
        if row["kind"] == "floor":
            continue
        name, queries = row["name"], row["queries"]
        checks.append(
            _check(
                f"{name}: queries <= {TARGETS['queries']}",
                queries,
                queries is not None and queries <= TARGETS["queries"],
            )
        )
        if both_sizes:
            checks.append(
                _check(
                    f"{name}: the same queries on a quarter of the data",
                    f"{queries} / {row['quarter_queries']}",
                    queries is not None and queries == row["quarter_queries"],
                )
            )
        for ratio, limit, label in (
            ("vs_peer", TARGETS["peer_ratio"], f"p50 no slower than the peer ({row['peer']})"),
            ("vs_floor", TARGETS["floor_ratio"], f"p50 <= {TARGETS['floor_ratio']:g}x floor"),
        ):
            checks.append(
                _check(
                    f"{name}: {label}", row[ratio], row[ratio] is not None and row[ratio] <= limit
                )
            )
        if both_sizes:
            limit = TARGETS["scale_ratio"]
            checks.append(
                _check(
                    f"{name}: p50 at full <= {limit:g}x at a quarter",
                    row["vs_quarter"],
                    row["vs_quarter"] is not None and row["vs_quarter"] <= limit,
                )
            )
    sweep = report["backend"]["sweep"]
    none_due, open_steps = sweep["none_due"]["median_ms"], sweep["open_steps"]
    checks.append(
        _check(
            f"sweep, none due, < {TARGETS['sweep_none_due_ms']:g} ms at "
            f"{TARGETS['sweep_open_steps']:,} open steps (measured at {open_steps:,})",
            none_due,
            none_due < TARGETS["sweep_none_due_ms"] and open_steps >= TARGETS["sweep_open_steps"],
        )
    )
    rss = report["gunicorn_rss"]["full"]["max_worker_mb"]
    checks.append(
        _check(
            f"worker RSS < {TARGETS['rss_mb']:g} MB",
            rss,
            rss is not None and rss < TARGETS["rss_mb"],
        )
    )
    return checks


def print_table(report: dict) -> None:
    def fmt(value, spec):
        if value is None:  # as wide as the figure it stands for
            width = "".join(c for c in spec.split(".")[0].split(",")[0] if c.isdigit())
            return "—".rjust(int(width or 0))
        return format(value, spec)

    config = report["config"]
    print()
    print(
        f"PartnerOps benchmark · {report['finished_at']} · {report['machine']['cpus']} CPU "
        f"({report['machine']['cpu_model']}), PostgreSQL {report['postgres']}, "
        f"gunicorn {config['workers']} workers per size, {config['users']} users, "
        f"{config['rounds']} x {config['phase_seconds']:g} s per page"
        + (" · SMOKE: tiny sizes, the figures mean nothing" if config["smoke"] else "")
    )
    for size, data in report["data"].items():
        sizes = data["sizes"]
        print(
            f"Data ({size}): {sizes['partners']:,} partners, {sizes['closed_cases']:,} closed + "
            f"{sizes['open_cases']:,} open cases, {sizes['commissions']:,} commissions, "
            f"{sizes['payouts']:,} payouts, {sizes['notifications']:,} notifications "
            f"({data['status']}"
            + (f" in {data['seconds']} s" if data["status"] == "generated" else "")
            + ")"
        )
    header = (
        f"{'page':<18} {'user':<8} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6} {'app':>5} "
        f"{'db':>5} {'q':>3} {'q/4':>3} {'bytes':>8} {'peer p50':>8} {'/peer':>5} "
        f"{'/floor':>6} {'1/4 p50':>7} {'full/4':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in report["rows"]:
        print(
            f"{row['name']:<18} {row['user']:<8} {fmt(row['p50_ms'], '7.1f')} "
            f"{fmt(row['p95_ms'], '7.1f')} {fmt(row['rps'], '6.1f')} "
            f"{fmt(row['app_p50_ms'], '5.1f')} {fmt(row['db_p50_ms'], '5.1f')} "
            f"{fmt(row['queries'], '3d')} {fmt(row['quarter_queries'], '3d')} "
            f"{fmt(row['bytes'], '8,d')} {fmt(row['peer_p50_ms'], '8.1f')} "
            f"{fmt(row['vs_peer'], '5.2f')} {fmt(row['vs_floor'], '6.2f')} "
            f"{fmt(row['quarter_p50_ms'], '7.1f')} {fmt(row['vs_quarter'], '6.2f')}"
        )
    print("Peers: the Django admin as the superuser, on the full data set")
    for page in report["pages"]:
        if page["kind"] == "peer":
            print(
                f"  {page['name']:<28} p50 {fmt(page['p50_ms'], '7.1f')} ms, "
                f"{fmt(page['queries'], 'd')} queries, {fmt(page['bytes'], ',d')} bytes  "
                f"{page['path']}"
                + (
                    "  (one request alone: slower than a phase)"
                    if page["too_slow_to_drive"]
                    else ""
                )
                + ("  (from its warm-up requests only)" if page.get("warm_up_only") else "")
            )
    sweep = report["backend"]["sweep"]
    due = sweep["one_percent_due"]
    print(
        f"Deadline sweep, {sweep['open_steps']:,} open steps: none due median "
        f"{sweep['none_due']['median_ms']} ms (max {sweep['none_due']['max_ms']} ms, "
        f"{sweep['none_due']['queries']} queries); 1% due ({due['due']:,}): first pass "
        f"{due['first_pass_ms']:.0f} ms, all {due['total_ms']:.0f} ms in {len(due['passes'])} "
        f"passes ({due['ms_per_due_step']} ms per due step)"
    )
    service = report["backend"]["service_path"]
    print(
        f"Service path (open -> Done, {service['steps_per_case']:g} steps, "
        f"{service['events_per_case']:g} events per case): {service['cases_per_s']} cases/s, "
        f"median {service['median_ms_per_case']} ms per case, "
        f"{service['queries_per_case']:g} queries per case ({service['cases']} cases)"
    )
    for size, rss in report["gunicorn_rss"].items():
        print(
            f"Gunicorn RSS after the run ({size}): workers "
            f"{', '.join(f'{v:g}' for v in rss['workers_mb'])} MB (master {rss['master_mb']} MB)"
        )
    checks = report["targets"]
    failing = [check for check in checks if not check["holds"]]
    print(f"Issue 16 targets: {len(checks) - len(failing)} of {len(checks)} hold")
    for check in checks:
        print(f"  {'holds' if check['holds'] else 'MISSES':<6} {check['target']}: {check['value']}")
    print(
        f"Results: {report['results_file']} · plans: {report['explain_file']}"
        f" · total {report['duration_s']:.0f} s\n"
    )


# ----------------------------------------------------------------------------------- main


def stored_page_plan(database_url: str, script: str, wanted: list[str]) -> dict[str, dict]:
    """For the in-process tools: the bench plan's pages (peers included) by name, for the
    data set stored in `database_url`; exits with `script`'s message if there is none or a
    page in `wanted` is not one of them."""
    params = db_params(database_url)
    meta = stored_meta(params)
    if meta is None:
        sys.exit(f"{script}: no data set in the bench database; run `make bench` first")
    plan = page_plan(meta, subject_ids(params, meta), "2100-01-01T00:00:00Z")
    pages = {page["name"]: page for page in plan}
    unknown = [name for name in wanted if name not in pages]
    if unknown:
        sys.exit(f"{script}: no page {', '.join(unknown)}; pages: {', '.join(pages)}")
    return pages


def bench_env(database_url: str, *, allowed_hosts: str) -> dict:
    """The environment the benchmark runs Django in: partnerops.settings.bench on the bench
    database, over plain HTTP, with files under var/bench/."""
    work = ROOT / "var" / "bench"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_DEBUG", "PARTNEROPS_VAR_DIR")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
            "DJANGO_ALLOWED_HOSTS": allowed_hosts,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SESSION_COOKIE_SECURE": "false",
            "DJANGO_CSRF_COOKIE_SECURE": "false",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "PARTNEROPS_VAR_DIR": str(work / "var"),
            "DJANGO_STATIC_ROOT": str(work / "static"),
            "DJANGO_LOG_LEVEL": "WARNING",
            # Pages are measured signed in; the second factor is a step of logging in, not
            # a cost of the pages, and no worker runs here for the alarm to miss.
            "PARTNEROPS_REQUIRE_2FA_FOR": "",
            "PARTNEROPS_WORKER_ALARM": "false",
        }
    )
    return env


def start_gunicorn(stack: ExitStack, args, env: dict, port: int, work: Path, size: str):
    log_path = work / f"gunicorn-{size}.log"
    log = stack.enter_context(open(log_path, "w"))  # noqa: SIM115 - the stack closes it
    # No shell: the venv's gunicorn with fixed flags.
    process = subprocess.Popen(  # noqa: S603
        [
            str(BIN / "gunicorn"),
            "partnerops.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--pid",
            str(work / f"gunicorn-{size}.pid"),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop():
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    wait_until_up(Client(port), process, log_path)
    say(f"gunicorn ({size}) up on 127.0.0.1:{port} (pid {process.pid})")
    return process


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    sizes = {"full": (args.database_url, args.sizes)}
    if not args.single_size:
        sizes["quarter"] = (args.quarter_database_url, quarter_of(args.sizes))
    allowed = "127.0.0.1,localhost"
    envs = {size: bench_env(url, allowed_hosts=allowed) for size, (url, _) in sizes.items()}
    data = {}
    for size, (url, wanted) in sizes.items():
        data[size] = ensure_data(url, wanted, envs[size])
        say(f"VACUUM (ANALYZE) of the {size} database: {vacuum_analyze(db_params(url))} s")
    if static_is_current(work / "static"):
        say("static files already collected")
    else:
        say("collecting static files (hashed and compressed, as in production)")
        manage(envs["full"], "collectstatic", "--noinput", "-v0")

    cutoff = datetime.now(UTC).replace(microsecond=0).isoformat()
    entries, rss = [], {}
    with ExitStack() as stack:
        servers = {}
        for offset, (size, (url, _)) in enumerate(sizes.items()):
            port = args.port + offset
            servers[size] = start_gunicorn(stack, args, envs[size], port, work, size)
            meta = data[size]["meta"]
            plan = page_plan(meta, subject_ids(db_params(url), meta), cutoff)
            if size != "full":  # the peers are compared at the full size only
                plan = [page for page in plan if page["kind"] != "peer"]
            client = Client(port)
            sessions = {user: client.login(user) for user in sorted({p["user"] for p in plan})}
            for page in plan:
                page.update(
                    size=size,
                    cookie=sessions[page["user"]],
                    url=f"http://127.0.0.1:{port}{page['path']}",
                )
            probe(client, plan, args.phase_seconds)
            say(
                f"every page answers 200 ({size}); "
                + ", ".join(f"{p['name']} {p['queries']}q" for p in plan)
            )
            entries.extend(plan)
        # Interleaved: each page at the full size, then at the quarter, then its peer, so
        # the figures compared with one another are measured seconds apart.
        order = {
            page["name"]: index for index, page in enumerate(entries) if page["size"] == "full"
        }
        entries.sort(
            key=lambda e: (order[e.get("of", e["name"])], e["kind"] == "peer", e["size"] != "full")
        )
        for entry in entries:
            if entry["too_slow_to_drive"]:
                say(
                    f"{key(entry)} took {entry['first_ms']:.0f} ms alone: measured by that"
                    " request, not driven under load"
                )
        samples = run_locust(args, [e for e in entries if not e["too_slow_to_drive"]], work)
        rss = {size: worker_rss(process.pid) for size, process in servers.items()}
    summarise(args, entries, samples)
    out = ROOT / args.out
    explain_file = out.with_name(out.stem + "-explain.md")
    say(f"EXPLAIN ANALYZE of every page's queries (full size) -> {explain_file.relative_to(ROOT)}")
    page_file = work / "pages.json"
    page_file.write_text(
        json.dumps(
            [{k: e[k] for k in ("name", "path", "user")} for e in entries if e["size"] == "full"]
        )
    )
    explain_file.parent.mkdir(parents=True, exist_ok=True)
    manage(envs["full"], "explain_pages", f"--plan={page_file}", f"--out={explain_file}")
    say("timing the deadline sweep and the service path (full size)")
    backend_file = work / "backend.json"
    manage(
        envs["full"],
        "bench_backend",
        f"--sweep-open={args.sweep_open}",
        f"--service-cases={args.service_cases}",
        f"--json={backend_file}",
    )
    backend = json.loads(backend_file.read_text())
    vacuum_analyze(db_params(args.database_url))
    report = {
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": machine(),
        "postgres": postgres_version(db_params(args.database_url)),
        "config": {
            "smoke": args.smoke,
            "sizes_measured": list(sizes),
            "workers": args.workers,
            "users": args.users,
            "phase_seconds": args.phase_seconds,
            "rounds": args.rounds,
            "warmup_seconds": args.warmup_seconds,
            "settings": f"{SETTINGS} (the production settings, DEBUG off, plus the bench app)",
            "database_conn_max_age": envs["full"].get(
                "DATABASE_CONN_MAX_AGE", "60 (production default)"
            ),
        },
        "data": {
            size: {
                "status": data[size]["status"],
                "seconds": data[size]["seconds"],
                "sizes": data[size]["meta"]["sizes"],
                "counts": data[size]["meta"].get("counts"),
                "generated_at": data[size]["meta"].get("generated_at"),
                "generation_seconds": data[size]["meta"].get("seconds"),
            }
            for size in sizes
        },
        "pages": [{k: v for k, v in e.items() if k != "cookie"} for e in entries],
        "rows": compare(entries),
        "backend": backend,
        "gunicorn_rss": rss,
        "results_file": str(out.relative_to(ROOT)),
        "explain_file": str(explain_file.relative_to(ROOT)),
    }
    report["targets"] = targets_check(report)
    report["duration_s"] = round(time.monotonic() - began, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    errors = sum(entry["errors"] for entry in entries)
    if errors:
        print(f"bench: {errors} request(s) failed during the load phase", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
