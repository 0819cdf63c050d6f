"""A large, deterministic data set for the benchmark (`manage.py generate_bench_data`).

Everything comes from one seeded `random.Random`, and every time is an offset from the
moment of generation (`--now`, by default the current minute), so the same seed and moment
give the same partners, cases, ledger and inbox, row for row. Another moment moves the
dates; a business day's cut-off can then move a due date, and with it a few payments
(0.1% of them between 01:27 and 02:48 UTC on the same day). Rows go in with PostgreSQL's
COPY in batches, on a second connection in a background thread, so building rows (Python)
and loading them (PostgreSQL) use both cores.

What is generated, and the rules it keeps:

- users: the demo's role users (`cam`, `cam2`, `salesops`, `car`, `car2`, `portaladmin`,
  `manager`, superuser `admin`) and CAMs up to `CAMS`, all with the demo password;
- partners spread over the CAMs, `cam` managing `cam_partners` per 20,000 of them; each has
  its $0 membership licence, other licences, and (beta portal) referral links;
- closed cases (done or withdrawn) with the full event history the services would have
  written: opened, every step on the case's branch with its data and the deadline it was
  completed against, each payment recorded at step 8, withdrawal. A partner can have several
  (it left and re-joined, or a case was withdrawn); the last one decides the partner's
  status;
- open cases, at most one per partner (the database's constraint), spread over steps 2-13
  (step 1 is recorded when a case is opened, so no open case stands at it) on consistent
  branches, with `step_due_at`/`step_remind_at` from the real deadline rules; some overdue.
  A reminder or escalation already owed is marked sent (with its notifications), as the
  sweep would have done;
- the ledger: payouts (paid in full, partly paid, open or void with a reason, never overpaid)
  and their payments; commissions rolled into payouts or open or void; orders. Nothing is
  outstanding for an offboarded partner or a case past step 8; no payment is dated after
  the partner's offboard date unless it carries a CAR override (a few do, as the exceptions
  report expects); step 9 is always recorded by a CAR user who paid nothing on the case;
- notifications: inbox rows for every role, most of them read, one digest per user per day;
- two special cases: one standing at step 8 with a long history (`long_history` events) and
  one at step 9 whose final statement has `statement_lines` payout lines.

The triggers stay on while loading: case events are only ever inserted (payments first, so
the four-eyes trigger sees them) and the payment guard checks every payment.
"""

import datetime as dt
import io
import json
import queue
import random
import threading
import time
import types
import uuid
from dataclasses import dataclass, field

import psycopg2
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from offboarding import case_chain
from offboarding.calendar import BusinessCalendar
from offboarding.deadlines import reminder_lead
from offboarding.demo import DEMO_PASSWORD, USERS
from offboarding.process import NOTICE_PERIOD_DAYS, STEP_BY_NUMBER, DeadlineRule

META_TABLE = "partnerops_bench_meta"
CAMS = 60
DAY = 86_400.0
HOUR = 3_600.0

DATA_TABLES = (
    "partners_partner",
    "offboarding_case",
    "offboarding_caseevent",
    "payouts_payout",
    "payouts_payment",
    "payouts_commission",
    "notifications_notification",
)


@dataclass
class Sizes:
    partners: int = 20_000
    closed_cases: int = 100_000
    open_cases: int = 5_000
    commissions: int = 1_000_000
    payouts: int = 200_000
    notifications: int = 200_000
    long_history: int = 1_000
    statement_lines: int = 500
    cam_partners: int = 350  # partners of `cam` per 20,000 partners
    seed: int = 20_261_123

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class BenchDataError(Exception):
    """The sizes or the database do not allow generating the data set."""


def database_name() -> str:
    return str(connection.settings_dict.get("NAME") or "")


def read_meta() -> dict | None:
    """What a previous run stored (sizes, targets), or None on a database without data."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [META_TABLE])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'dataset'")  # noqa: S608 - a constant
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


# ---------------------------------------------------------------------------- formatting

NULL = "\\N"


def _esc(text: str) -> str:
    """A value for COPY's text format."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "")
        )
    return text


def _ts(seconds: float | None) -> str:
    if seconds is None:
        return NULL
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


class _EventSealer:
    """The COPY line of each generated event, sealed as CaseEvent.save seals a row
    (offboarding.case_chain): position, previous hash and hash, case by case. The events of a
    case come one after another, in the order of their ids."""

    def __init__(self):
        self.case_id = None
        self.position = 0
        self.previous = case_chain.GENESIS

    def __call__(self, event_id, kind, step, from_state, to_state, at, data, actor, case_id, due):
        if case_id != self.case_id:
            self.case_id, self.position, self.previous = case_id, 0, case_chain.GENESIS
        self.position += 1

        def moment(seconds):
            return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)

        event = types.SimpleNamespace(
            case_id=case_id,
            position=self.position,
            previous_hash=self.previous,
            kind=kind,
            step_number=step,
            from_state=from_state,
            to_state=to_state,
            actor_id=actor,
            created_at=moment(at),
            due_at=moment(due),
            data=data,
            note="",
            evidence_digests=[],
        )
        digest = case_chain.event_hash(event)
        line = (
            f"{event_id}\t{kind}\t{NULL if step is None else step}\t{from_state}\t{to_state}\t"
            f"{_ts(at)}\t{_json(data)}\t\t{actor}\t{case_id}\t{_ts(due)}\t"
            f"{self.position}\t[]\t{self.previous}\t{digest}"
        )
        self.previous = digest
        return line


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _json(data) -> str:
    return _esc(json.dumps(data, separators=(",", ":")))


def _b(value: bool | None) -> str:
    if value is None:
        return NULL
    return "t" if value else "f"


def _d(day: dt.date | None) -> str:
    return NULL if day is None else day.isoformat()


# ------------------------------------------------------------------------------ loading


class Loader:
    """COPY batches into tables, in the order given (so parents land before children).

    With `background`, a second connection loads in a thread while the caller builds the
    next batch; each batch commits on its own. Without it (tests), the batches go through
    Django's connection and its transaction.
    """

    BATCH = 40_000

    def __init__(self, *, background: bool):
        self.background = background
        self.error: BaseException | None = None
        if background:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            self.conn = psycopg2.connect(**params)
            self.conn.autocommit = True
            with self.conn.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
            self.queue: queue.Queue = queue.Queue(maxsize=4)
            self.thread = threading.Thread(target=self._work, name="bench-copy", daemon=True)
            self.thread.start()

    def _work(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                with self.conn.cursor() as cursor:
                    self._copy(cursor, *item)
            except BaseException as error:  # reported to the generating thread
                self.error = error

    @staticmethod
    def _copy(cursor, table, columns, text):
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN", io.StringIO(text), size=1 << 20
        )

    def submit(self, table, columns, lines):
        text = "\n".join(lines) + "\n"
        if self.error is not None:
            raise self.error
        if self.background:
            self.queue.put((table, columns, text))
        else:
            with connection.cursor() as cursor:
                self._copy(cursor.cursor, table, columns, text)

    def sink(self, table, columns):
        return Sink(self, table, columns)

    def close(self):
        if self.background:
            self.queue.put(None)
            self.thread.join()
            self.conn.close()
        if self.error is not None:
            raise self.error


class Sink:
    def __init__(self, loader, table, columns):
        self.loader, self.table, self.columns = loader, table, columns
        self.lines: list[str] = []
        self.rows = 0

    def add(self, line: str):
        self.lines.append(line)
        if len(self.lines) >= Loader.BATCH:
            self.flush()

    def flush(self):
        if self.lines:
            self.loader.submit(self.table, self.columns, self.lines)
            self.rows += len(self.lines)
            self.lines = []

    def close(self) -> int:
        self.flush()
        return self.rows


# ---------------------------------------------------------------------------- deadlines


class Deadlines:
    """The process's deadline rules (offboarding.deadlines), memoised for millions of calls.

    A business-day deadline depends only on the local date of activation and whether it is
    before the cut-off; a notice deadline only on the notice date.
    """

    def __init__(self, calendar: BusinessCalendar):
        self.calendar = calendar
        self.tz = calendar.tz
        self._cache: dict = {}

    def due(self, step, activated: float, notice: dt.date | None) -> float | None:
        rule = step.deadline
        if rule is DeadlineRule.NOTICE_PLUS_30:
            if notice is None:
                return None
            key = (rule, notice)
            if key not in self._cache:
                self._cache[key] = self.calendar.calendar_days_after(
                    notice, NOTICE_PERIOD_DAYS
                ).timestamp()
            return self._cache[key]
        local = dt.datetime.fromtimestamp(activated, self.tz)
        key = (rule, local.date(), local.time() < self.calendar.cutoff)
        cached = self._cache.get(key)
        if cached is None:
            if rule is DeadlineRule.SAME_BUSINESS_DAY:
                cached = self.calendar.same_business_day(local).timestamp()
            else:
                cached = self.calendar.first_business_day_after(local).timestamp()
            self._cache[key] = cached
        return cached

    def remind(self, step, due: float | None, activated: float) -> float | None:
        if due is None:
            return None
        return max(due - reminder_lead(step).total_seconds(), activated)

    def local_date(self, seconds: float) -> dt.date:
        return dt.datetime.fromtimestamp(seconds, self.tz).date()

    def at(self, day: dt.date, hour: float) -> float:
        base = dt.datetime.combine(day, dt.time(0), tzinfo=self.tz).timestamp()
        return base + hour * HOUR


# -------------------------------------------------------------------------------- plans

ADJECTIVES = (  # noqa: SIM905 - a list of words reads best as words
    "Northern Southern Eastern Western Blue Green Red Silver Golden Granite Cedar Maple Oak "
    "Pine Harbor Summit Valley River Lake Prairie Coastal Union Liberty Pioneer Keystone "
    "Evergreen Bright Clear True Sterling"
).split()
NOUNS = (  # noqa: SIM905 - a list of words reads best as words
    "Ledger Books Accounts Tax Advisory Finance Audit Payroll Numbers Balance Capital Trust "
    "Partners Consulting Bookkeeping Fiscal Assurance Counsel Figures Growth Compass Anchor "
    "Beacon Bridge Crest Forge Harvest Meridian Vista Summit"
).split()
SUFFIXES = ("LLC", "Inc.", "Group", "& Co.", "Partners", "Associates", "CPAs", "Ltd.")
FIRST_NAMES = (  # noqa: SIM905 - a list of words reads best as words
    "Alex Blake Cameron Dana Elliot Frankie Gray Harper Indy Jamie Kendall Logan Morgan "
    "Noel Oakley Parker Quinn Reese Sawyer Taylor"
).split()
LAST_NAMES = (  # noqa: SIM905 - a list of words reads best as words
    "Adams Brooks Carter Diaz Evans Foster Garcia Hayes Ito Jensen Kim Lopez Moore Nakamura "
    "Owens Price Quist Rossi Silva Tanaka"
).split()
CURRENCIES = ("USD",) * 14 + ("EUR", "EUR", "EUR", "GBP", "GBP", "CAD")
REASONS_COMPANY = ("revenue_minimum", "inactivity", "compliance", "contract_breach")
REASONS_PARTNER = ("business_change", "acquired", "other_program", "other")
REASON_LABELS = {
    "revenue_minimum": "Revenue minimum not met",
    "inactivity": "Inactive partner",
    "compliance": "Compliance or policy breach",
    "contract_breach": "Breach of contract",
    "business_change": "Partner's business changed or closed",
    "acquired": "Partner acquired or merged",
    "other_program": "Partner moving to another program",
    "other": "Other (see detail)",
}
METHODS = ("ach", "ach", "ach", "wire", "check", "card")


@dataclass(slots=True)
class PartnerPlan:
    id: int
    cam: int
    name: str
    portal: str
    tier: str
    joined: dt.date
    currency: str
    cases: list = field(default_factory=list)
    status: str = "active"
    offboard_date: dt.date | None = None
    status_reason: str = ""
    removed: bool = False  # step 5 done: opted out, out of the group, no landing pages
    suspended_at: float | None = None  # step 6 done
    links_off_at: float | None = None  # step 12 done
    archived_at: float | None = None  # step 13 done
    ledger_end: dt.date | None = None
    may_owe: bool = True  # open payouts, commissions or orders are plausible
    special: str = ""


@dataclass(slots=True)
class CasePlan:
    id: int
    partner: PartnerPlan
    company: bool
    legal: bool
    money: bool
    beta: bool
    path: list  # step numbers completed, in order
    times: list  # completion time of each, epoch seconds
    state: str  # the case's state now
    received_on: dt.date = None
    notice: dt.date | None = None
    exit_date: dt.date | None = None
    offboard: dt.date | None = None
    reason: str = ""
    channel: str = ""
    withdrawn_at: float | None = None
    started: float = 0.0
    due: float | None = None
    remind: float | None = None
    reminded: float | None = None
    escalated: float | None = None
    payer: int = 0
    verifier: int = 0
    car: int = 0
    finals: list = field(default_factory=list)  # payouts paid (or to pay) at step 8
    extra_events: list = field(default_factory=list)  # (time, kind, data, actor)

    @property
    def closed(self) -> bool:
        return self.state in ("done", "withdrawn")

    @property
    def opened_at(self) -> float:
        return self.times[0]

    @property
    def closed_at(self) -> float | None:
        if self.state == "withdrawn":
            return self.withdrawn_at
        if self.state == "done":
            return self.times[-1]
        return None


@dataclass(slots=True)
class PayoutPlan:
    id: int
    partner: PartnerPlan
    earned: dt.date
    currency: str
    parts: list  # commission amounts (cents); the payout's amount is their sum
    status: str = "paid"
    payments: list = field(default_factory=list)  # PaymentPlan
    void_reason: str = ""
    override: int | None = None

    @property
    def amount(self) -> int:
        return sum(self.parts)

    @property
    def paid(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def reference(self) -> str:
        return f"PO-{self.id:08d}"


@dataclass(slots=True)
class PaymentPlan:
    id: int
    amount: int
    paid_on: dt.date
    recorded_at: float
    recorded_by: int
    case: int | None = None
    override: int | None = None
    reported_at: float | None = None

    @property
    def reference(self) -> str:
        return f"AP-{self.id:08d}"


def path_for(company: bool, legal: bool, money: bool, beta: bool) -> list[int]:
    path = [1, 2 if company else 3]
    if not legal:
        path.append(4)
    path += [5, 6, 7]
    if money:
        path += [8, 9]
    path.append(10)
    if beta:
        path += [11, 12, 13]
    return path


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    last_of_previous = first - dt.timedelta(days=1)
    return last_of_previous.replace(day=1), last_of_previous


# ---------------------------------------------------------------------------- generator


class Generator:
    def __init__(
        self,
        sizes: Sizes,
        *,
        out=print,
        background: bool = True,
        vacuum: bool = True,
        now: dt.datetime | None = None,
    ):
        self.s = sizes
        self.r = random.Random(sizes.seed)
        self.out = out
        self.background = background
        self.vacuum = vacuum
        self.clock = time.monotonic()
        # Whole minutes, so the data does not depend on sub-second timing.
        self.now = (now or timezone.now()).replace(second=0, microsecond=0)
        self.now_ts = self.now.timestamp()
        self.calendar = BusinessCalendar.from_settings()
        self.deadlines = Deadlines(self.calendar)
        self.today = self.calendar.local_date(self.now)
        self.partners: list[PartnerPlan] = []
        self.cases: list[CasePlan] = []
        self.payouts: list[PayoutPlan] = []
        self.overrides: list[tuple] = []  # (id, partner id, approver, reason, created)
        self.orders: list[tuple] = []
        self.next_payment = 1
        self.targets: dict = {}

    # ---- helpers
    def say(self, message: str):
        self.out(f"[{time.monotonic() - self.clock:6.1f}s] {message}")

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def check(self):
        s = self.s
        if s.partners < 10:
            raise BenchDataError("--partners must be at least 10.")
        if s.open_cases + 2 > s.partners:
            raise BenchDataError("--open-cases must leave room: one open case per partner.")
        specials = self._long_history_payouts()[0] + s.statement_lines
        if specials > s.payouts // 2:
            raise BenchDataError(
                f"--payouts {s.payouts} is too small for the statement ({s.statement_lines} "
                f"lines) and long-history ({s.long_history} events) cases: needs "
                f"{2 * specials}."
            )
        with connection.cursor() as cursor:
            for table in DATA_TABLES:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608 - DATA_TABLES
                if cursor.fetchone()[0]:
                    raise BenchDataError(
                        f"{table} already has rows: generate into a freshly migrated database."
                    )

    def _long_history_payouts(self) -> tuple[int, int, int]:
        """(payouts, of which paid, of which voided) of the long-history partner."""
        events = max(self.s.long_history - 8, 3)
        paid = int(events * 0.45)
        voided = int(events * 0.25)
        return paid + voided + 12, paid, voided

    # ---- run
    def run(self) -> dict:
        self.check()
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        self.make_users()
        self.plan_partners()
        self.plan_cases()
        self.plan_ledger()
        self.say(
            f"planned {len(self.partners):,} partners, {len(self.cases):,} cases, "
            f"{len(self.payouts):,} payouts"
        )
        loader = Loader(background=self.background)
        try:
            counts = self.emit(loader)
        finally:
            loader.close()
        self.finish(counts)
        return self.meta

    # ---- users
    def make_users(self):
        user_model = get_user_model()
        password = make_password(DEMO_PASSWORD)
        specs = [(username, first, last, role) for username, first, last, role in USERS]
        for n in range(3, CAMS + 1):
            specs.append(
                (
                    f"cam{n:02d}",
                    FIRST_NAMES[n % len(FIRST_NAMES)],
                    LAST_NAMES[(n * 7) % len(LAST_NAMES)],
                    Role.CAM,
                )
            )
        specs.append(("admin", "Ada", "Admin", Role.MANAGER))
        joined = self.now - dt.timedelta(days=3 * 365)
        users = user_model.objects.bulk_create(
            [
                user_model(
                    username=username,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@example.com",
                    password=password,
                    is_staff=username == "admin",
                    is_superuser=username == "admin",
                    date_joined=joined,
                )
                for username, first, last, _ in specs
            ]
        )
        groups = {group.name: group.pk for group in Group.objects.all()}
        missing = {role.value for *_, role in specs} - set(groups)
        if missing:
            raise BenchDataError(f"Role groups missing (run migrate first): {sorted(missing)}")
        through = user_model.groups.through
        through.objects.bulk_create(
            [
                through(user_id=user.pk, group_id=groups[role.value])
                for user, (*_, role) in zip(users, specs, strict=True)
            ]
        )
        self.users = {user.username: user.pk for user in users}
        self.cams = [self.users["cam"], self.users["cam2"]] + [
            self.users[f"cam{n:02d}"] for n in range(3, CAMS + 1)
        ]
        self.managers = [self.users["manager"], self.users["admin"]]
        self.cars = [self.users["car"], self.users["car2"]]
        self.say(f"users: {len(users)} (password {DEMO_PASSWORD!r})")

    # ---- partners
    def plan_partners(self):
        r, s = self.r, self.s
        n = s.partners
        cam_share = max(1, round(s.cam_partners * n / 20_000))
        regular = n - 2
        cam_ids = set(r.sample(range(1, regular + 1), min(cam_share, regular)))
        others = self.cams[1:]
        for pid in range(1, n + 1):
            name = (
                f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)} {r.choice(SUFFIXES)}"
                if pid <= regular
                else ("Longhistory Ledger Group" if pid == n - 1 else "Statement Books LLC")
            )
            self.partners.append(
                PartnerPlan(
                    id=pid,
                    cam=self.cams[0] if pid in cam_ids else r.choice(others),
                    name=name,
                    portal="beta" if r.random() < 0.35 else "legacy",
                    tier=r.choice(("member", "member", "member", "advanced", "premier", "elite")),
                    joined=self.today - dt.timedelta(days=r.randint(7 * 365, 14 * 365)),
                    currency=r.choice(CURRENCIES),
                )
            )
        self.partners[-2].special = "long_history"
        self.partners[-1].special = "statement"
        for partner in self.partners[-2:]:
            partner.cam = self.users["cam2"]
            partner.currency = "USD"
        self.cam_partner_ids = sorted(cam_ids)

    # ---- cases
    def plan_cases(self):
        r, s = self.r, self.s
        regular = self.partners[:-2]
        next_id = iter(range(1, 10**9))
        # Open cases first: their partners, and the payouts their step 8s need.
        open_partners = r.sample(regular, s.open_cases - 2)
        self.payout_budget = s.payouts // 2 - s.statement_lines - self._long_history_payouts()[0]
        open_plans = []
        for index, partner in enumerate(open_partners):
            step = 2 + index % 12
            overdue = r.random() < 0.12
            open_plans.append((partner, step, overdue))
        # Closed cases: a few more for the partner-page target, the rest at random.
        target = next((p for p in regular if p.id == self.cam_partner_ids[0]), regular[0])
        counts = dict.fromkeys(range(len(regular)), 0)
        boost = min(12, s.closed_cases)
        counts[target.id - 1] = boost
        for index in r.choices(range(len(regular)), k=s.closed_cases - boost):
            counts[index] += 1
        open_by_partner = {partner.id: (step, overdue) for partner, step, overdue in open_plans}
        offboarded = set()
        for index, partner in enumerate(regular):
            if counts[index] and partner.id not in open_by_partner and r.random() < 0.45:
                offboarded.add(partner.id)
        for index, partner in enumerate(regular):
            k = counts[index]
            if partner.id in open_by_partner:
                step, overdue = open_by_partner[partner.id]
                opened_after = self._open_case(partner, next_id, step, overdue)
                window_end = opened_after - 20 * DAY
            else:
                window_end = self.now_ts - 45 * DAY
            if k:
                self._closed_cases(partner, next_id, k, window_end, partner.id in offboarded)
            self._settle_partner(partner)
        self._special_cases(next_id)
        self.cases.sort(key=lambda case: case.id)
        self.say(
            f"cases planned: {sum(c.closed for c in self.cases):,} closed, "
            f"{sum(not c.closed for c in self.cases):,} open, "
            f"{sum(1 for c in self.cases if c.escalated):,} overdue"
        )
        self.targets["partner_detail"] = {"partner": target.id, "user": "cam"}

    def _actors(self, case: CasePlan):
        r = self.r
        case.payer = r.choice(self.cars)
        case.verifier = self.cars[1] if case.payer == self.cars[0] else self.cars[0]
        case.car = r.choice(self.cars)

    def _request(self, case: CasePlan):
        r = self.r
        case.reason = r.choice(REASONS_COMPANY if case.company else REASONS_PARTNER)
        case.channel = "internal_review" if case.company else r.choice(("email", "letter"))
        opened_local = self.deadlines.local_date(case.times[0])
        case.received_on = opened_local - dt.timedelta(days=r.randint(0, 3))

    def _notice_from_path(self, case: CasePlan):
        """Steps 2/3 record the notice: dates follow from when they were completed."""
        r = self.r
        notice_index = 1
        if len(case.path) <= notice_index:
            return
        done_on = self.deadlines.local_date(case.times[notice_index])
        case.notice = done_on - dt.timedelta(days=r.randint(0, 1 if case.company else 3))
        earliest = case.notice + dt.timedelta(days=NOTICE_PERIOD_DAYS)
        if not case.company and r.random() < 0.5:
            case.exit_date = earliest + dt.timedelta(days=r.randint(0, 30))
        case.offboard = max(earliest, case.exit_date) if case.exit_date else earliest

    def _gap(self, step: int) -> float:
        r = self.r
        if step == 8:
            return r.uniform(1 * DAY, 12 * DAY)
        if step in (11, 12, 13):
            return r.uniform(0.5 * DAY, 5 * DAY)
        return r.uniform(0.5 * HOUR, 2.5 * DAY)

    def _open_case(self, partner, next_id, step, overdue) -> float:
        """An open case standing at `step`: returns when it was opened."""
        r = self.r
        company = step == 2 or (step != 3 and r.random() < 0.6)
        legal = company and step >= 5 and r.random() < 0.15
        money = step in (8, 9) or (step >= 10 and r.random() < 0.5)
        if step >= 11:
            partner.portal = "beta"
        beta = partner.portal == "beta"
        full = path_for(company, legal, money, beta)
        path = full[: full.index(step)]
        rule = STEP_BY_NUMBER[step].deadline
        if rule is DeadlineRule.NOTICE_PLUS_30:
            ago = r.randint(32, 70) if overdue else r.randint(1, 24)
            notice = self.today - dt.timedelta(days=ago)
            notice_done = min(self.deadlines.at(notice, r.uniform(9, 16)), self.now_ts - HOUR)
            after = len(path) - 2  # steps completed after the notice step
            started = notice_done + r.uniform(0.5, 0.95) * (self.now_ts - notice_done)
            between = sorted(r.uniform(notice_done, started) for _ in range(after - 1))
            times = [notice_done - r.uniform(0.5 * HOUR, 2 * DAY), notice_done, *between, started]
        else:
            if overdue:
                started = self.now_ts - r.uniform(6 * DAY, 20 * DAY)
            else:
                started = self.now_ts - r.uniform(0, 3 * HOUR)
            times = [started]
            for number in reversed(path[1:]):
                times.append(times[-1] - self._gap(number))
            times.reverse()
        case = CasePlan(
            id=next(next_id),
            partner=partner,
            company=company,
            legal=legal,
            money=money,
            beta=beta,
            path=path,
            times=times,
            state=f"step_{step}",
        )
        self._request(case)
        self._notice_from_path(case)
        if rule is DeadlineRule.NOTICE_PLUS_30:
            case.notice = notice
            case.offboard = max(
                notice + dt.timedelta(days=NOTICE_PERIOD_DAYS), case.exit_date or notice
            )
        self._actors(case)
        self._schedule(case, times[-1], overdue)
        partner.cases.append(case)
        partner.status = "offboarding"
        self.cases.append(case)
        return times[0]

    def _schedule(self, case: CasePlan, started: float, overdue: bool):
        """The active step's clock, and what the sweep has already sent for it."""
        step = STEP_BY_NUMBER[int(case.state.removeprefix("step_"))]
        due = self.deadlines.due(step, started, case.notice)
        if not overdue and due is not None and due <= self.now_ts:
            # Started before today's cut-off: restart it now, so it is due later.
            started = self.now_ts - self.r.uniform(0, 60)
            case.times[-1] = started
            due = self.deadlines.due(step, started, case.notice)
        while overdue and due is not None and due > self.now_ts:
            # Earlier still: the whole history moves back a week, its dates with it.
            started -= 7 * DAY
            case.times = [t - 7 * DAY for t in case.times]
            week = dt.timedelta(days=7)
            case.received_on -= week
            case.notice = case.notice and case.notice - week
            case.exit_date = case.exit_date and case.exit_date - week
            case.offboard = case.offboard and case.offboard - week
            due = self.deadlines.due(step, started, case.notice)
        case.started = started
        case.due = due
        case.remind = self.deadlines.remind(step, due, started)
        if case.remind is not None and case.remind <= self.now_ts:
            case.reminded = min(case.remind + self.r.uniform(0, 60), self.now_ts)
        if due is not None and due <= self.now_ts:
            case.escalated = min(due + self.r.uniform(0, 60), self.now_ts)
            case.reminded = case.reminded or case.escalated

    def _closed_cases(self, partner, next_id, k, window_end, last_done):
        r = self.r
        window_start = self.now_ts - 6 * 365 * DAY
        slot = (window_end - window_start) / k
        first_start = window_start + r.uniform(0, slot * 0.3)
        earliest_join = self.deadlines.local_date(first_start) - dt.timedelta(days=60)
        partner.joined = min(partner.joined, earliest_join)
        for n in range(k):
            start = window_start + n * slot + r.uniform(0, slot * 0.3)
            done = (n == k - 1 and last_done) or (n != k - 1 and r.random() < 0.6)
            company = r.random() < 0.6
            if done:
                legal = company and r.random() < 0.15
                money = r.random() < 0.5 and self.payout_budget > 0
                if money:
                    self.payout_budget -= 2
                path = path_for(company, legal, money, partner.portal == "beta")
            else:
                legal = money = False
                path = [1, 2 if company else 3][: r.randint(1, 2)]
                if len(path) == 2 and r.random() < 0.4:
                    path.append(4)
            # Squeeze the case into its slot if its steps would overrun the next one.
            gaps = [self._gap(number) for number in path[1:]]
            room = slot * 0.65
            if sum(gaps) > room:
                gaps = [g * room / sum(gaps) for g in gaps]
            times = [start]
            for gap in gaps:
                times.append(times[-1] + gap)
            case = CasePlan(
                id=next(next_id),
                partner=partner,
                company=company,
                legal=legal,
                money=money,
                beta=partner.portal == "beta",
                path=path,
                times=times,
                state="done" if done else "withdrawn",
            )
            self._request(case)
            self._notice_from_path(case)
            self._actors(case)
            if not done:
                case.withdrawn_at = times[-1] + r.uniform(0.5 * HOUR, 5 * DAY)
                case.started = case.withdrawn_at
            else:
                case.started = times[-1]
            partner.cases.append(case)
            self.cases.append(case)
        partner.cases.sort(key=lambda c: c.opened_at)

    def _settle_partner(self, partner: PartnerPlan):
        """The partner record as the cases left it."""
        last = partner.cases[-1] if partner.cases else None
        if last is None:
            partner.ledger_end = self.today
            return
        if last.state == "done":
            partner.status = "offboarded"
            partner.offboard_date = min(last.offboard, self.today - dt.timedelta(days=1))
            partner.status_reason = REASON_LABELS[last.reason]
            partner.removed = True
            partner.suspended_at = last.times[last.path.index(6)]
            if last.beta:
                partner.links_off_at = last.times[last.path.index(12)]
                partner.archived_at = last.times[-1]
            partner.ledger_end = partner.offboard_date
            partner.may_owe = False
        elif last.state == "withdrawn":
            partner.ledger_end = self.today
        else:
            done = set(last.path)
            if 5 in done:
                partner.removed = True
                partner.offboard_date = last.offboard
                partner.status_reason = REASON_LABELS[last.reason]
            if 6 in done:
                partner.suspended_at = last.times[last.path.index(6)]
            if 12 in done:
                partner.links_off_at = last.times[last.path.index(12)]
            partner.ledger_end = min(last.notice or self.today, self.today)
            partner.may_owe = int(last.state.removeprefix("step_")) <= 8

    def _special_cases(self, next_id):
        """The long-history case (step 8) and the big-statement case (step 9)."""
        for partner in self.partners[-2:]:
            at_step = 8 if partner.special == "long_history" else 9
            notice = self.today - dt.timedelta(days=15 if at_step == 8 else 20)
            notice_done = self.deadlines.at(notice, 10)
            path = [1, 3, 4, 5, 6, 7] + ([8] if at_step == 9 else [])
            step_8_start = notice_done + 4 * DAY
            times = [notice_done - DAY, notice_done, notice_done + DAY, notice_done + 2 * DAY]
            times += [notice_done + 3 * DAY, step_8_start]
            if at_step == 9:
                times.append(self.now_ts - 2 * DAY)
            case = CasePlan(
                id=next(next_id),
                partner=partner,
                company=False,
                legal=False,
                money=True,
                beta=partner.portal == "beta",
                path=path,
                times=times,
                state=f"step_{at_step}",
            )
            self._request(case)
            case.notice = notice
            case.offboard = notice + dt.timedelta(days=NOTICE_PERIOD_DAYS)
            case.payer, case.verifier, case.car = self.cars[0], self.cars[1], self.cars[0]
            self._schedule(case, times[-1], overdue=False)
            partner.cases.append(case)
            partner.status = "offboarding"
            partner.removed = True
            partner.offboard_date = case.offboard
            partner.status_reason = REASON_LABELS[case.reason]
            partner.suspended_at = times[path.index(6)]
            partner.ledger_end = notice - dt.timedelta(days=1)
            partner.may_owe = at_step == 8
            self.cases.append(case)
            key = "case_detail" if at_step == 8 else "statement"
            self.targets[key] = {"case": case.id, "user": "car"}

    # ---- ledger
    def new_payment(self, amount, paid_on, recorded_at, by, case=None, override=None):
        payment = PaymentPlan(
            self.next_payment, amount, paid_on, min(recorded_at, self.now_ts), by, case, override
        )
        self.next_payment += 1
        return payment

    def _parts(self, k: int) -> list[int]:
        r = self.r
        return [r.randint(1_000, 60_000) for _ in range(k)]

    def plan_ledger(self):
        r, s = self.r, self.s
        next_payout = iter(range(1, 10**9))
        deadlines = self.deadlines
        # Final payouts: those a case paid at step 8 (or still has to, at step 8).
        finals_by_partner: dict[int, list] = {}
        for case in self.cases:
            if not case.money or case.partner.special:
                continue
            finals_by_partner.setdefault(case.partner.id, []).append(case)
        special_payouts = self._long_history_payouts()[0] + s.statement_lines
        finals_needed = 2 * sum(len(cases) for cases in finals_by_partner.values())
        historic = max(0, s.payouts - special_payouts - finals_needed)
        # Spread the historic payouts over partners by how long they have been in the program.
        regular = [p for p in self.partners if not p.special]
        weights = [max((p.ledger_end - p.joined).days, 30) for p in regular]
        per_partner = dict.fromkeys(range(len(regular)), 0)
        for index in r.choices(range(len(regular)), weights=weights, k=historic):
            per_partner[index] += 1
        exceptions_left = max(1, round(20 * s.partners / 20_000))
        for index, partner in enumerate(self.partners):
            if partner.special:
                self._special_ledger(partner, next_payout)
                continue
            for case in finals_by_partner.get(partner.id, ()):
                self._final_payouts(case, next_payout, 2)
            cap = partner.offboard_date or self.today
            end = min(partner.ledger_end, cap)
            span = max((end - partner.joined).days, 1)
            for _ in range(per_partner[index]):
                earned = partner.joined + dt.timedelta(days=r.randint(0, span))
                if not partner.may_owe:
                    # Settled long before the partner's last case looked at money.
                    earned = min(earned, end - dt.timedelta(days=60))
                earned = max(earned, partner.joined)
                payout = PayoutPlan(
                    next(next_payout), partner, earned, partner.currency, self._parts(1)
                )
                self.payouts.append(payout)
                roll = r.random()
                if roll < 0.03:
                    payout.status = "void"
                    payout.void_reason = r.choice(
                        ("Duplicate line", "Clawback: order refunded", "Booked twice in AP")
                    )
                    continue
                paid_on = earned + dt.timedelta(days=r.randint(10, 50))
                outstanding = partner.may_owe and paid_on > self.today
                if paid_on > cap:
                    paid_on = cap
                    if not outstanding and paid_on < earned:
                        payout.earned = earned = paid_on
                recorded = deadlines.at(paid_on, r.uniform(9, 17))
                if outstanding:
                    if r.random() < 0.3:
                        payout.status = "pending"
                        payout.parts.append(r.randint(1_000, 20_000))
                        part = payout.amount // 3
                        on = max(min(self.today, cap), earned)
                        payout.payments.append(
                            self.new_payment(part, on, deadlines.at(on, 15), r.choice(self.cars))
                        )
                    else:
                        payout.status = "open"
                    continue
                if r.random() < 0.1:
                    payout.parts.append(r.randint(1_000, 20_000))
                    first = payout.amount // 2
                    early = max(earned, paid_on - dt.timedelta(days=14))
                    payout.payments.append(
                        self.new_payment(first, early, deadlines.at(early, 11), r.choice(self.cars))
                    )
                    payout.payments.append(
                        self.new_payment(
                            payout.amount - first, paid_on, recorded, r.choice(self.cars)
                        )
                    )
                else:
                    payout.payments.append(
                        self.new_payment(payout.amount, paid_on, recorded, r.choice(self.cars))
                    )
            if (
                exceptions_left
                and partner.status == "offboarded"
                and partner.offboard_date + dt.timedelta(days=2) < self.today
            ):
                exceptions_left -= 1
                self._guard_exception(partner, next_payout)
        self.say(
            f"ledger planned: {len(self.payouts):,} payouts, {self.next_payment - 1:,} "
            f"payments, {len(self.overrides)} guard overrides"
        )

    def _final_payouts(self, case: CasePlan, next_payout, count: int):
        """What was owed at step 7 and paid at step 8, or (at step 8) is being paid."""
        r = self.r
        partner = case.partner
        notice = case.notice
        step_8 = case.path.index(8) if 8 in case.path else None
        start = case.times[step_8 - 1] if step_8 else case.started
        end = case.times[step_8] if step_8 is not None else self.now_ts
        for n in range(count):
            earned = max(notice - dt.timedelta(days=r.randint(5, 45)), partner.joined)
            payout = PayoutPlan(next(next_payout), partner, earned, partner.currency, [])
            payout.parts = self._parts(r.randint(1, 3))
            self.payouts.append(payout)
            case.finals.append(payout)
            if step_8 is None and n == 0:
                payout.status = "open"  # still owed: the case stands at step 8
                continue
            if step_8 is None:
                payout.status = "pending"
                when = r.uniform(start, end)
                payout.payments.append(self._case_payment(case, payout, payout.amount // 2, when))
                continue
            when = r.uniform(start, end)
            payout.payments.append(self._case_payment(case, payout, payout.amount, when))

    def _case_payment(self, case, payout, amount, when):
        paid_on = self.deadlines.local_date(when)
        if case.partner.offboard_date and paid_on > case.partner.offboard_date:
            # Paid and recorded on the offboard date itself: any later needs an override.
            paid_on = case.partner.offboard_date
            when = min(when, self.deadlines.at(paid_on, 16))
        paid_on = max(paid_on, payout.earned)
        payment = self.new_payment(amount, paid_on, when, case.payer, case=case.id)
        case.extra_events.append((when, "payment", (payout, payment), case.payer))
        return payment

    def _guard_exception(self, partner, next_payout):
        """A payment after the offboard date, with CAR's reasoned override."""
        r = self.r
        paid_on = partner.offboard_date + dt.timedelta(
            days=r.randint(1, max(1, min(20, (self.today - partner.offboard_date).days - 1)))
        )
        recorded = self.deadlines.at(paid_on, 14)
        override_id = len(self.overrides) + 1
        self.overrides.append(
            (
                override_id,
                partner.id,
                self.users["car"],
                "Commission earned before the offboard date; paid late by AP.",
                recorded - HOUR,
            )
        )
        earned = partner.offboard_date - dt.timedelta(days=r.randint(5, 30))
        payout = PayoutPlan(next(next_payout), partner, earned, partner.currency, self._parts(1))
        payment = self.new_payment(
            payout.amount, paid_on, recorded, self.users["car"], override=override_id
        )
        if r.random() < 0.8:
            payment.reported_at = min(recorded + DAY, self.now_ts)
        payout.payments.append(payment)
        self.payouts.append(payout)

    def _special_ledger(self, partner, next_payout):
        r = self.r
        case = partner.cases[-1]
        step_8_start = case.times[5]
        end = case.times[6] if len(case.times) > 6 else self.now_ts - HOUR
        if partner.special == "statement":
            for _ in range(self.s.statement_lines):
                earned = case.notice - dt.timedelta(days=r.randint(5, 300))
                payout = PayoutPlan(next(next_payout), partner, earned, "USD", self._parts(1))
                self.payouts.append(payout)
                case.finals.append(payout)
                payout.payments.append(
                    self._case_payment(case, payout, payout.amount, r.uniform(step_8_start, end))
                )
            return
        total, paid, voided = self._long_history_payouts()
        for n in range(total):
            earned = case.notice - dt.timedelta(days=r.randint(5, 400))
            payout = PayoutPlan(next(next_payout), partner, earned, "USD", self._parts(1))
            self.payouts.append(payout)
            case.finals.append(payout)
            when = r.uniform(step_8_start, end)
            if n < paid:
                payout.payments.append(self._case_payment(case, payout, payout.amount, when))
            elif n < paid + voided:
                payout.status = "void"
                payout.void_reason = "Duplicate of an earlier payout"
                case.extra_events.append((when, "void", payout, case.payer))
            else:
                payout.status = "open"
        orders = max(self.s.long_history - 8 - paid - voided, 0)
        for _ in range(orders):
            order_id = len(self.orders) + 1
            outcome = r.choice(("closed", "cancelled"))
            when = r.uniform(step_8_start, end)
            self.orders.append(
                (order_id, partner.id, case.notice - dt.timedelta(days=20), outcome, when)
            )
            case.extra_events.append((when, "order", (order_id, outcome), case.payer))

    # ---- emission
    def emit(self, loader) -> dict:
        counts = {}
        for name, method in (
            ("partners", self.emit_partners),
            ("licences and links", self.emit_partner_systems),
            ("cases", self.emit_cases),
            ("guard overrides", self.emit_overrides),
            ("payouts", self.emit_payouts),
            ("payments", self.emit_payments),
            ("commissions", self.emit_commissions),
            ("orders", self.emit_orders),
            ("case events", self.emit_events),
            ("notifications", self.emit_notifications),
        ):
            rows = method(loader)
            counts[name] = rows
            self.say(f"{name}: {rows:,} rows")
        return counts

    def emit_partners(self, loader):
        sink = loader.sink(
            "partners_partner",
            [
                "id",
                "legal_name",
                "display_name",
                "record_id",
                "crm_account_id",
                "portal_partner_id",
                "email",
                "program",
                "tier",
                "joined_on",
                "status",
                "status_reason",
                "offboard_date",
                "opted_out",
                "in_distribution_group",
                "landing_page_access",
                "portal",
                "portal_archived_at",
                "created_at",
                "updated_at",
                "cam_id",
            ],
        )
        for p in self.partners:
            slug = p.name.split()[0].lower()
            created = _ts(self.deadlines.at(p.joined, 10))
            removed = p.removed
            sink.add(
                "\t".join(
                    (
                        str(p.id),
                        f"{p.name} {p.id}",
                        p.name,
                        f"QB-{200000 + p.id}",
                        f"SF-{500000 + p.id}",
                        f"PS-{900000 + p.id}" if p.portal == "beta" else "",
                        f"partners{p.id}@{slug}.example",
                        "Reseller Program",
                        p.tier,
                        p.joined.isoformat(),
                        p.status,
                        p.status_reason,
                        _d(p.offboard_date),
                        _b(removed),
                        _b(not removed),
                        _b(not removed),
                        p.portal,
                        _ts(p.archived_at),
                        created,
                        _ts(self.now_ts),
                        str(p.cam),
                    )
                )
            )
        return sink.close()

    def emit_partner_systems(self, loader):
        licences = loader.sink(
            "partners_licence",
            ["id", "sku", "product_name", "is_membership", "status", "suspended_at", "partner_id"],
        )
        links = loader.sink(
            "partners_referrallink",
            ["id", "code", "target_url", "status", "deactivated_at", "partner_id"],
        )
        licence_id = link_id = 0
        self.membership_licence = {}
        for p in self.partners:
            licence_id += 1
            self.membership_licence[p.id] = licence_id
            suspended = p.suspended_at
            licences.add(
                f"{licence_id}\tRPM-0\tReseller Premier Membership\tt\t"
                f"{'suspended' if suspended else 'active'}\t{_ts(suspended)}\t{p.id}"
            )
            licence_id += 1
            licences.add(f"{licence_id}\tQBA-1\tAccountant Desktop\tf\tactive\t{NULL}\t{p.id}")
            if p.id % 2:
                licence_id += 1
                licences.add(f"{licence_id}\tQBO-2\tOnline Advanced\tf\tactive\t{NULL}\t{p.id}")
            if p.portal == "beta":
                for n in (1, 2):
                    link_id += 1
                    code = f"qb-{200000 + p.id}-{n}"
                    off = p.links_off_at
                    links.add(
                        f"{link_id}\t{code}\thttps://portal.example/r/{code}\t"
                        f"{'deactivated' if off else 'active'}\t{_ts(off)}\t{p.id}"
                    )
        self.link_codes = lambda pid: [f"qb-{200000 + pid}-1", f"qb-{200000 + pid}-2"]
        return licences.close() + links.close()

    def emit_cases(self, loader):
        sink = loader.sink(
            "offboarding_case",
            [
                "id",
                "state",
                "opened_at",
                "closed_at",
                "initiated_by",
                "reason",
                "reason_detail",
                "request_received_on",
                "request_channel",
                "legal_action",
                "notice_date",
                "requested_exit_date",
                "offboard_date",
                "money_on_table",
                "portal",
                "withdrawal_reason",
                "step_started_at",
                "step_due_at",
                "opened_by_id",
                "partner_id",
                "step_escalated_at",
                "step_remind_at",
                "step_reminded_at",
            ],
        )
        for c in self.cases:
            done = set(c.path)
            legal = c.legal if 2 in done else None
            money = c.money if 7 in done else None
            portal = ("beta" if c.beta else "legacy") if 10 in done else ""
            sink.add(
                "\t".join(
                    (
                        str(c.id),
                        c.state,
                        _ts(c.opened_at),
                        _ts(c.closed_at),
                        "company" if c.company else "partner",
                        c.reason,
                        "",
                        c.received_on.isoformat(),
                        c.channel,
                        _b(legal),
                        _d(c.notice),
                        _d(c.exit_date),
                        _d(c.offboard),
                        _b(money),
                        portal,
                        "Partner rescinded after a call." if c.state == "withdrawn" else "",
                        _ts(c.started),
                        _ts(c.due),
                        str(c.partner.cam),
                        str(c.partner.id),
                        _ts(c.escalated),
                        _ts(c.remind),
                        _ts(c.reminded),
                    )
                )
            )
        return sink.close()

    def emit_overrides(self, loader):
        sink = loader.sink(
            "payouts_guardoverride",
            [
                "id",
                "reason",
                "created_at",
                "requested_by_id",
                "approved_by_id",
                "decided_at",
                "partner_id",
                "status",
                "kind",
                "currency",
                "reference",
                "refusal_reason",
                "single_approval",
            ],
        )
        # Asked by CAR's first user, approved by the second (Decision D's four eyes).
        requester, approver = self.cars
        for override_id, partner_id, _, reason, created in self.overrides:
            sink.add(
                f"{override_id}\t{reason}\t{_ts(created)}\t{requester}\t{approver}\t"
                f"{_ts(created)}\t{partner_id}\tused\tpayment\t\t\t\tf"
            )
        return sink.close()

    def emit_payouts(self, loader):
        sink = loader.sink(
            "payouts_payout",
            [
                "id",
                "amount",
                "currency",
                "created_at",
                "reference",
                "description",
                "earned_on",
                "status",
                "paid_amount",
                "void_reason",
                "override_id",
                "partner_id",
            ],
        )
        for po in self.payouts:
            amount = po.amount
            paid = po.paid
            if po.status == "paid" and paid != amount:
                raise BenchDataError(f"payout {po.id} paid {paid} of {amount}")
            if paid > amount:
                raise BenchDataError(f"payout {po.id} overpaid")
            sink.add(
                f"{po.id}\t{_money(amount)}\t{po.currency}\t"
                f"{_ts(self.deadlines.at(po.earned, 12))}\t{po.reference}\t"
                f"Commission {po.earned:%b %Y}\t{po.earned.isoformat()}\t{po.status}\t"
                f"{_money(paid)}\t{po.void_reason}\t{NULL}\t{po.partner.id}"
            )
        return sink.close()

    def emit_payments(self, loader):
        sink = loader.sink(
            "payouts_payment",
            [
                "id",
                "amount",
                "currency",
                "paid_on",
                "method",
                "payment_system",
                "reference",
                "idempotency_key",
                "recorded_at",
                "case_id",
                "override_id",
                "recorded_by_id",
                "payout_id",
                "exception_reported_at",
                "after_offboard_date",
            ],
        )
        r = self.r
        rows = []
        for po in self.payouts:
            for pm in po.payments:
                rows.append((pm.id, po, pm))
        rows.sort(key=lambda row: row[0])
        for _, po, pm in rows:
            sink.add(
                f"{pm.id}\t{_money(pm.amount)}\t{po.currency}\t{pm.paid_on.isoformat()}\t"
                f"{r.choice(METHODS)}\tAP\t{pm.reference}\t{self.uuid4()}\t"
                f"{_ts(pm.recorded_at)}\t{NULL if pm.case is None else pm.case}\t"
                f"{NULL if pm.override is None else pm.override}\t{pm.recorded_by}\t{po.id}\t"
                f"{_ts(pm.reported_at)}\t{'t' if _after_offboard(po.partner, pm) else 'f'}"
            )
        return sink.close()

    def emit_commissions(self, loader):
        r, s = self.r, self.s
        sink = loader.sink(
            "payouts_commission",
            [
                "id",
                "amount",
                "currency",
                "created_at",
                "source",
                "reference",
                "period_start",
                "period_end",
                "earned_on",
                "status",
                "partner_id",
                "override_id",
                "payout_id",
            ],
        )
        linked = sum(len(po.parts) for po in self.payouts)
        # Each payout's commissions sum to its amount; top them up to the requested count
        # by splitting the largest lines, or stop short if the payouts already need more.
        extra_linked = max(0, int(s.commissions * 0.9) - linked)
        split: dict[int, int] = {}
        if self.payouts:
            for index in r.choices(range(len(self.payouts)), k=extra_linked):
                split[index] = split.get(index, 0) + 1
        cid = 0
        sources = ("portal", "billing", "marketplace")
        for index, po in enumerate(self.payouts):
            parts = po.parts
            more = split.get(index, 0)
            if more:
                parts = self._split(parts, more)
            status = "void" if po.status == "void" else "in_payout"
            for amount in parts:
                cid += 1
                earned = po.earned - dt.timedelta(days=r.randint(0, 45))
                start, end = _month_bounds(earned)
                sink.add(
                    f"{cid}\t{_money(amount)}\t{po.currency}\t"
                    f"{_ts(self.deadlines.at(earned, 8))}\t{sources[cid % 3]}\tCM-{cid:09d}\t"
                    f"{start.isoformat()}\t{end.isoformat()}\t{earned.isoformat()}\t{status}\t"
                    f"{po.partner.id}\t{NULL}\t{po.id}"
                )
        # Standalone lines: open ones where money may still be owed, void ones anywhere.
        owing = [p for p in self.partners if p.may_owe and p.special != "statement"]
        long_history = next(p for p in self.partners if p.special == "long_history")
        remaining = max(0, s.commissions - cid)
        for n in range(remaining):
            if n < 10:
                partner, status = long_history, "open"
            elif owing and n % 2 == 0:
                partner, status = r.choice(owing), "open"
            else:
                partner, status = r.choice(self.partners), "void"
            cid += 1
            if status == "open":
                cap = min(partner.offboard_date or self.today, self.today)
                earned = cap - dt.timedelta(days=r.randint(0, 40))
            else:
                span = max((partner.ledger_end - partner.joined).days, 1)
                earned = partner.joined + dt.timedelta(days=r.randint(0, span))
            start, end = _month_bounds(earned)
            sink.add(
                f"{cid}\t{_money(r.randint(500, 40_000))}\t{partner.currency}\t"
                f"{_ts(self.deadlines.at(earned, 8))}\t{sources[cid % 3]}\tCM-{cid:09d}\t"
                f"{start.isoformat()}\t{end.isoformat()}\t{earned.isoformat()}\t{status}\t"
                f"{partner.id}\t{NULL}\t{NULL}"
            )
        return sink.close()

    def _split(self, parts: list[int], more: int) -> list[int]:
        parts = list(parts)
        for _ in range(more):
            index = max(range(len(parts)), key=parts.__getitem__)
            amount = parts[index]
            if amount < 2:
                break
            cut = self.r.randint(1, amount - 1)
            parts[index] = cut
            parts.append(amount - cut)
        return parts

    def emit_orders(self, loader):
        r = self.r
        sink = loader.sink(
            "payouts_order",
            [
                "id",
                "amount",
                "currency",
                "created_at",
                "reference",
                "ordered_on",
                "status",
                "resolution_note",
                "override_id",
                "partner_id",
            ],
        )
        by_id = {p.id: p for p in self.partners}
        order_id = 0
        for order_id, partner_id, ordered_on, outcome, _when in self.orders:
            partner = by_id[partner_id]
            sink.add(
                f"{order_id}\t{_money(r.randint(2_000, 90_000))}\t{partner.currency}\t"
                f"{_ts(self.deadlines.at(ordered_on, 9))}\tOR-{order_id:08d}\t"
                f"{ordered_on.isoformat()}\t{outcome}\tResolved at step 8\t{NULL}\t{partner.id}"
            )
        long_history = next(p for p in self.partners if p.special == "long_history")
        for n in range(len(self.partners)):
            order_id += 1
            partner = long_history if n < 5 else r.choice(self.partners)
            open_order = partner.may_owe and (n < 5 or r.random() < 0.3)
            if open_order:
                ordered_on = self.today - dt.timedelta(days=r.randint(0, 60))
                status, note = "open", ""
            else:
                span = max((partner.ledger_end - partner.joined).days, 1)
                ordered_on = partner.joined + dt.timedelta(days=r.randint(0, span))
                status = r.choice(("closed", "closed", "cancelled"))
                note = "Closed by the client" if status == "closed" else "Cancelled"
            sink.add(
                f"{order_id}\t{_money(r.randint(2_000, 90_000))}\t{partner.currency}\t"
                f"{_ts(self.deadlines.at(ordered_on, 9))}\tOR-{order_id:08d}\t"
                f"{ordered_on.isoformat()}\t{status}\t{note}\t{NULL}\t{partner.id}"
            )
        return sink.close()

    # ---- events
    def _step_data(self, case: CasePlan, step: int) -> dict:
        p = case.partner
        if step == 1:
            return {
                "initiated_by": "company" if case.company else "partner",
                "reason": case.reason,
                "reason_detail": "",
                "request_received_on": case.received_on.isoformat(),
                "request_channel": case.channel,
            }
        if step == 2:
            return {"legal_action": case.legal, "notice_date": case.notice.isoformat()}
        if step == 3:
            return {
                "notice_date": case.notice.isoformat(),
                "notice_channel": "email",
                "requested_exit_date": case.exit_date.isoformat() if case.exit_date else None,
            }
        if step == 5:
            return {
                f"{item}_reference": f"QB-TICKET-{p.id}"
                for item in ("status_reason", "opted_out", "distribution_group", "landing_pages")
            }
        if step == 6:
            return {
                "licence": {
                    "id": self.membership_licence[p.id],
                    "label": "Reseller Premier Membership (RPM-0)",
                }
            }
        if step == 7:
            totals: dict[str, int] = {}
            lines = []
            for po in case.finals:
                totals[po.currency] = totals.get(po.currency, 0) + po.amount
                lines.append(
                    {
                        "reference": po.reference,
                        "remaining": _money(po.amount),
                        "currency": po.currency,
                    }
                )
            return {
                "money_on_table": case.money,
                "open_balance": {
                    "totals": {cur: _money(v) for cur, v in sorted(totals.items())},
                    "payouts": lines,
                    "commissions": [],
                    "orders": [],
                },
            }
        if step == 9:
            lines, totals = [], {}
            for po in case.finals:
                paid = [
                    {
                        "reference": pm.reference,
                        "amount": _money(pm.amount),
                        "paid_on": pm.paid_on.isoformat(),
                        "by": "car" if pm.recorded_by == self.cars[0] else "car2",
                    }
                    for pm in po.payments
                ]
                lines.append(
                    {
                        "payout": po.reference,
                        "currency": po.currency,
                        "status": po.status,
                        "owed_at_notice": _money(po.amount),
                        "paid": paid,
                        "remaining": "0.00",
                        "void_reason": "",
                    }
                )
                sums = totals.setdefault(po.currency, [0, 0])
                sums[0] += po.amount
                sums[1] += po.paid
            return {
                "statement": {
                    "notice_date": case.notice.isoformat(),
                    "lines": lines,
                    "totals": {
                        cur: {
                            "owed_at_notice": _money(a),
                            "paid": _money(b),
                            "remaining": "0.00",
                        }
                        for cur, (a, b) in sorted(totals.items())
                    },
                }
            }
        if step == 10:
            return {"portal": "beta" if case.beta else "legacy"}
        if step == 12:
            return {"links_deactivated": 2, "link_codes": self.link_codes(p.id)}
        return {}

    def _actor(self, case: CasePlan, step: int) -> int:
        lane = STEP_BY_NUMBER[step].lane.value
        if lane in ("partner", "cam"):
            return case.partner.cam
        if lane == "sales_ops":
            return self.users["salesops"]
        if lane == "portal_admin":
            return self.users["portaladmin"]
        if step == 9:
            return case.verifier
        if step == 8:
            return case.payer
        return case.car

    def emit_events(self, loader):
        sink = loader.sink(
            "offboarding_caseevent",
            [
                "id",
                "kind",
                "step_number",
                "from_state",
                "to_state",
                "created_at",
                "data",
                "note",
                "actor_id",
                "case_id",
                "due_at",
                "position",
                "evidence_digests",
                "previous_hash",
                "hash",
            ],
        )
        event_id = 0
        deadlines = self.deadlines
        first_step = STEP_BY_NUMBER[1]
        seal = _EventSealer()
        for case in self.cases:
            path, times = case.path, case.times
            # The state each completion moved the case to.
            after = [f"step_{n}" for n in path[1:]]
            if case.state == "withdrawn":
                after.append(f"step_{path_for(case.company, False, False, False)[len(path)]}")
            else:
                after.append(case.state)  # "done", or the step the case stands at
            cam = case.partner.cam
            event_id += 1
            sink.add(seal(event_id, "opened", None, "", after[0], times[0], {}, cam, case.id, None))
            received = deadlines.at(case.received_on, 0)
            # Payments, voids and order resolutions happen while step 8 is active.
            extra = sorted(case.extra_events, key=lambda e: e[0])
            extra_at = 0
            for index, step in enumerate(path):
                if index == 0:
                    due = deadlines.due(first_step, received, None)
                else:
                    due = deadlines.due(STEP_BY_NUMBER[step], times[index - 1], case.notice)
                while extra_at < len(extra) and extra[extra_at][0] < times[index]:
                    event_id += 1
                    sink.add(seal(event_id, *self._extra_event(case, extra[extra_at])))
                    extra_at += 1
                event_id += 1
                data = self._step_data(case, step)
                sink.add(
                    seal(
                        event_id,
                        "step_completed",
                        step,
                        f"step_{step}",
                        after[index],
                        times[index],
                        data or {},
                        self._actor(case, step),
                        case.id,
                        due,
                    )
                )
            while extra_at < len(extra):  # the case stands at step 8
                event_id += 1
                sink.add(seal(event_id, *self._extra_event(case, extra[extra_at])))
                extra_at += 1
            if case.state == "withdrawn":
                event_id += 1
                reason = {"reason": "Partner rescinded after a call."}
                sink.add(
                    seal(
                        event_id,
                        "withdrawn",
                        None,
                        after[-1],
                        "withdrawn",
                        case.withdrawn_at,
                        reason,
                        cam,
                        case.id,
                        None,
                    )
                )
        return sink.close()

    def _extra_event(self, case, extra) -> tuple:
        """kind, step, from and to state, time, data, actor, case and due of the event."""
        when, kind, payload, actor = extra
        if kind == "payment":
            payout, payment = payload
            data = {
                "payout": payout.reference,
                "amount": _money(payment.amount),
                "currency": payout.currency,
                "paid_on": payment.paid_on.isoformat(),
                "method": "ach",
                "reference": payment.reference,
                "override": "",
            }
            event_kind = "payment_recorded"
        elif kind == "void":
            data = {"voided_payout": payload.reference, "reason": payload.void_reason}
            event_kind = "ledger_changed"
        else:
            order_id, outcome = payload
            data = {"order": f"OR-{order_id:08d}", "outcome": outcome, "note": "Resolved"}
            event_kind = "ledger_changed"
        return (event_kind, 8, "step_8", "step_8", when, data, actor, case.id, None)

    # ---- notifications
    def emit_notifications(self, loader):
        r, s = self.r, self.s
        sink = loader.sink(
            "notifications_notification",
            [
                "id",
                "kind",
                "title",
                "body",
                "created_at",
                "read_at",
                "email_status",
                "delivery_key",
                "next_attempt_at",
                "email_attempts",
                "email_error",
                "emailed_at",
                "digest_day",
                "case_id",
                "recipient_id",
            ],
        )
        now = self.now_ts
        nid = 0

        def add(kind, title, body, created, recipient, case_id, digest_day=None):
            nonlocal nid
            nid += 1
            created = min(created, now)
            age = now - created
            read = r.random() < (0.95 if age > 14 * DAY else 0.4)
            read_at = min(created + r.uniform(60, 3 * DAY), now) if read else None
            roll = r.random()
            if digest_day is not None:
                status, emailed, attempts = "sent", created + 5, 1
            elif roll < 0.75:
                status, emailed, attempts = "sent", created + r.uniform(1, 30), 1
            elif roll < 0.85:
                status, emailed, attempts = "digested", created + DAY, 0
            else:
                status, emailed, attempts = "not_emailed", None, 0
            emailed = None if emailed is None else min(emailed, now)
            sink.add(
                f"{nid}\t{kind}\t{_esc(title[:200])}\t{_esc(body)}\t{_ts(created)}\t"
                f"{_ts(read_at)}\t{status}\t{self.uuid4()}\t{_ts(created)}\t{attempts}\t\t"
                f"{_ts(emailed)}\t{_d(digest_day)}\t{NULL if case_id is None else case_id}\t"
                f"{recipient}"
            )

        # What the sweep already sent for the open cases: escalations and reminders.
        for case in self.cases:
            if case.closed or nid >= s.notifications:
                continue
            step = STEP_BY_NUMBER[int(case.state.removeprefix("step_"))]
            label = f"Step {step.number} · {step.title} — {case.partner.name}"
            if case.escalated:
                due = dt.datetime.fromtimestamp(case.due, self.deadlines.tz)
                for recipient in {*self.managers, case.partner.cam}:
                    add(
                        "escalation",
                        f"Overdue since {due:%a %d %b %H:%M}: {label}",
                        f"Waiting for {step.lane.label}.",
                        case.escalated,
                        recipient,
                        case.id,
                    )
            elif case.reminded:
                due = dt.datetime.fromtimestamp(case.due, self.deadlines.tz)
                add(
                    "reminder",
                    f"Due {due:%a %d %b %H:%M}: {label}",
                    step.summary,
                    case.reminded,
                    self._performer(case, step.number),
                    case.id,
                )
        # The rest: what cases said to people over the years, and daily digests.
        digests = int(s.notifications * 0.05)
        others = max(0, s.notifications - nid - digests)
        kinds = (
            ("step_assigned", 45),
            ("case_opened", 12),
            ("case_closed", 12),
            ("reminder", 12),
            ("payout_to_verify", 6),
            ("case_withdrawn", 5),
            ("escalation", 5),
            ("payment_exception", 1),
        )
        kind_names = [k for k, _ in kinds]
        kind_weights = [w for _, w in kinds]
        for kind in r.choices(kind_names, weights=kind_weights, k=others):
            case = self.cases[r.randrange(len(self.cases))]
            end = case.closed_at or now
            created = r.uniform(case.opened_at, end)
            name = case.partner.name
            if kind == "case_opened":
                title, body, recipient = f"Offboarding opened for {name}", "", None
            elif kind == "case_closed":
                title, body = f"{name} is offboarded", "Offboard date."
                recipient = None if r.random() < 0.7 else case.partner.cam
            elif kind == "case_withdrawn":
                title, body = f"Offboarding withdrawn for {name}", "Rescinded."
                recipient = None if r.random() < 0.7 else case.partner.cam
            elif kind == "escalation":
                title, body = f"Overdue: {name}", "Waiting."
                recipient = None if r.random() < 0.7 else case.partner.cam
            elif kind in ("payout_to_verify", "payment_exception"):
                title, body, recipient = (
                    f"Payouts ready to verify — {name}",
                    "",
                    r.choice(self.cars),
                )
            else:
                number = r.choice(case.path)
                step = STEP_BY_NUMBER[number]
                title = f"Step {number} · {step.title} — {name}"
                body, recipient = step.summary, self._performer(case, number)
            if recipient is None:
                recipient = self.managers[0] if r.random() < 0.85 else self.managers[1]
            add(kind, title, body, created, recipient, case.id)
        people = list(self.users.values())
        per_user: dict[int, int] = {}
        for _ in range(min(digests, s.notifications - nid)):
            recipient = r.choice(people)
            back = per_user.get(recipient, 0) + 1
            per_user[recipient] = back
            day = self.today - dt.timedelta(days=back)
            add(
                "daily_digest",
                f"Your PartnerOps digest for {day:%a %d %b}",
                "Open steps on your plate.",
                self.deadlines.at(day, 7.1),
                recipient,
                None,
                digest_day=day,
            )
        return sink.close()

    def _performer(self, case: CasePlan, step: int) -> int:
        lane = STEP_BY_NUMBER[step].lane.value
        if lane in ("partner", "cam"):
            return case.partner.cam
        if lane == "sales_ops":
            return self.users["salesops"]
        if lane == "portal_admin":
            return self.users["portaladmin"]
        return self.r.choice(self.cars)

    # ---- finish
    def finish(self, counts: dict):
        tables = (
            "partners_partner",
            "partners_licence",
            "partners_referrallink",
            "offboarding_case",
            "offboarding_caseevent",
            "payouts_guardoverride",
            "payouts_payout",
            "payouts_payment",
            "payouts_commission",
            "payouts_order",
            "notifications_notification",
        )
        with connection.cursor() as cursor:
            for table in tables:
                # S608: the table names come from the tuple above.
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"coalesce(max(id), 0) + 1, false) FROM {table}"
                )
        if self.vacuum:
            self.say("VACUUM ANALYZE (visibility map and planner statistics)")
            with connection.cursor() as cursor:
                for table in tables:
                    cursor.execute(f"VACUUM (ANALYZE) {table}")
                cursor.execute("ANALYZE")
        open_long = self.targets["case_detail"]["case"]
        self.targets.update(
            {
                "my_work": {"user": "cam", "partners": len(self.cam_partner_ids)},
                "case_list_overdue": {"user": "manager"},
                "car_console": {"user": "car"},
                "inbox": {"user": "manager"},
                "floor": {"user": "cam"},
                "admin_changelist": {"user": "admin"},
            }
        )
        self.meta = {
            "sizes": self.s.as_dict(),
            "counts": counts,
            "targets": self.targets,
            "generated_at": self.now.isoformat(),
            "seconds": round(time.monotonic() - self.clock, 1),
            "long_history_case": open_long,
        }
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value jsonb)"
            )
            # S608: META_TABLE is a constant; the value goes as a parameter.
            cursor.execute(
                f"INSERT INTO {META_TABLE} (key, value) VALUES ('dataset', %s) "  # noqa: S608
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [json.dumps(self.meta)],
            )
        self.say("done")


def generate(
    sizes: Sizes,
    *,
    out=print,
    background: bool = True,
    vacuum: bool = True,
    now: dt.datetime | None = None,
) -> dict:
    """Fill the (empty, migrated) database; returns what was stored in the meta table."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise BenchDataError("The benchmark data set needs PostgreSQL.")
    return Generator(sizes, out=out, background=background, vacuum=vacuum, now=now).run()


def _after_offboard(partner, payment) -> bool:
    return partner.offboard_date is not None and payment.paid_on > partner.offboard_date
