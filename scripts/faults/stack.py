"""The production topology on its own ports, for the fault suite (issue 15, item 9).

Each fault script builds a `Stack`: its own PostgreSQL database (created, migrated, seeded
with the demo, dropped at the end), its own redis-server (started here so it can be stopped
and frozen without touching anybody else's), and whichever of gunicorn, a Celery worker,
Celery beat and an SMTP sink it needs, each a process of its own with its log in the
stack's work directory. The environment is the one `scripts/stack-smoke.sh` sets: production
settings over plain HTTP on 127.0.0.1 (the processes connect as `postgres`, the owner, where
the smoke now uses a role that owns nothing; the faults measure delivery and access, not that).

Everything is bounded: every wait has a deadline, and `close()` (also on SIGTERM/SIGINT and
at exit) stops every process this stack started, by its own id, and drops its database.
"""

import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python")
# The demo users' published password (offboarding/demo.py, README "Demo logins").
PASSWORD = "partnerops-demo"  # noqa: S105
PG = ["-h", "127.0.0.1", "-U", "postgres"]
# Every user the demo seeds (offboarding/demo.py), one per role and two of CAM and CAR.
DEMO_USERS = ("cam", "cam2", "salesops", "car", "car2", "portaladmin", "manager", "admin")
# The authorization matrix and the fuzz run gunicorn alone (no worker, on purpose: nothing
# but the requests may write). The worker alarm would rightly fire and write its rows, which
# their before/after comparisons would count as the requests' doing.
REQUESTS_ONLY = {"PARTNEROPS_WORKER_ALARM": "false"}


def psql(*sql: str, database: str = "postgres") -> str:
    argv = ["psql", *PG, "-d", database, "-qtAX", "-v", "ON_ERROR_STOP=1"]
    for statement in sql:
        argv += ["-c", statement]
    # No shell: the statements are this script's own, and psql is the PostgreSQL client on
    # the PATH, as for `make db`.
    done = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)  # noqa: S603
    return done.stdout


class Stack:
    def __init__(
        self,
        name: str,
        *,
        http_port: int,
        smtp_port: int,
        redis_port: int = 6393,
        extra_env: dict | None = None,
    ):
        self.name = name
        # The redis port in the name too: two runs side by side (on their own ports) do not
        # share a database.
        self.db = f"partnerops_he_{name}_{redis_port}"
        self.http_port, self.smtp_port, self.redis_port = http_port, smtp_port, redis_port
        self.base = f"http://127.0.0.1:{http_port}"
        self.work = Path(tempfile.mkdtemp(prefix=f"faults-{name}-"))
        self.mail_log = self.work / "mail.jsonl"
        # Outside this run's work directory, so a redis-server a crashed run left behind on
        # the port is found; in the project's var/, not a guessable name in the shared /tmp.
        self.redis_pidfile = ROOT / "var" / f"faults-redis-{redis_port}.pid"
        self.procs: dict[str, subprocess.Popen] = {}
        self.extra_env = extra_env or {}
        self._closed = False
        self._created = False  # only a database this stack created is dropped by it
        self._redis_started = False  # and only a redis-server it started is stopped
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    # ---- environment: the one scripts/stack-smoke.sh sets ----

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "partnerops.settings.prod",
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db}",
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "DJANGO_SECRET_KEY": f"faults-{self.name}-{int(time.time())}-not-a-real-secret-"
                "but-long-enough-for-django",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_SESSION_COOKIE_SECURE": "false",
                "DJANGO_CSRF_COOKIE_SECURE": "false",
                "DJANGO_EMAIL_HOST": "127.0.0.1",
                "DJANGO_EMAIL_PORT": str(self.smtp_port),
                "DJANGO_STATIC_ROOT": os.environ.get(
                    "FAULTS_STATIC_ROOT", str(self.work / "static")
                ),
                "PARTNEROPS_VAR_DIR": str(self.work / "var"),
                "PARTNEROPS_SITE_URL": self.base,
                "PARTNEROPS_HEARTBEAT_EVERY_SECONDS": "2",
                "PARTNEROPS_SWEEP_EVERY_SECONDS": "5",
                "DJANGO_LOG_LEVEL": "WARNING",
                # The second factor has its own tests; here the role rules behind it are
                # what is measured, and the demo users log in with their password alone.
                "PARTNEROPS_REQUIRE_2FA_FOR": "",
            }
        )
        env.update(self.extra_env)
        return env

    def django(self):
        """Set Django up in this (the driver's) process against the stack's database, so
        the script can count rows and build fixtures through the project's own services."""
        os.environ.update(self.env())
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    # ---- the database ----

    def prepare_database(self):
        (self.work / "var").mkdir(parents=True, exist_ok=True)
        # Without FORCE: a database still in use is another run of this fault, left alone.
        psql(f"DROP DATABASE IF EXISTS {self.db}")
        self._created = True
        template = os.environ.get("FAULTS_TEMPLATE_DB")
        if template:
            # run_all.sh migrates and seeds once; each fault copies that database.
            psql(f"CREATE DATABASE {self.db} TEMPLATE {template}")
        else:
            psql(f"CREATE DATABASE {self.db}")
            self.manage("migrate", "--noinput", "-v0")
            self.manage("seed_demo")
        static = Path(self.env()["DJANGO_STATIC_ROOT"])
        if not (static / "staticfiles.json").exists():
            self.manage("collectstatic", "--noinput", "-v0")

    def manage(self, *args: str, timeout: int = 300) -> str:
        # No shell; the venv's python and manage.py with this script's own arguments.
        done = subprocess.run(  # noqa: S603
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # ---- redis: our own server, so it can be stopped and frozen ----

    def redis_pid(self) -> int | None:
        try:
            pid = int(self.redis_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start_redis(self):
        if self.redis_pid():
            raise SystemExit(f"a redis-server of ours already runs on port {self.redis_port}")
        self._redis_started = True
        self.redis_pidfile.parent.mkdir(parents=True, exist_ok=True)
        # No shell, fixed flags; redis-server from the PATH (Debian's package).
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.redis_pidfile),
                "--dir",
                str(self.work),
                "--logfile",
                str(self.work / "redis.log"),
            ],
            check=True,
            timeout=20,
        )
        self.wait_for("redis to answer", self.redis_answers, seconds=20)

    def redis_answers(self) -> bool:
        # No shell, fixed argv; redis-cli from the PATH (Debian's package).
        done = subprocess.run(  # noqa: S603
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "ping"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
        )
        return done.stdout.strip() == "PONG"

    def stop_redis(self):
        """SIGTERM: redis-server shuts down; with no persistence its queues are gone."""
        pid = self.redis_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        os.kill(pid, signal.SIGTERM)
        self.wait_for("redis to stop", lambda: self.redis_pid() is None, seconds=20)

    def freeze_redis(self):
        os.kill(self.redis_pid(), signal.SIGSTOP)

    def thaw_redis(self):
        os.kill(self.redis_pid(), signal.SIGCONT)

    # ---- the processes ----

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 -- lives with the process
        # No shell; every caller passes the venv's gunicorn / celery with fixed flags.
        proc = subprocess.Popen(  # noqa: S603
            argv,
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a SIGKILL reaches the pool's children
        )
        self.procs[name] = proc
        return proc

    def start_gunicorn(self, workers: int = 2, threads: int = 1):
        self.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "partnerops.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.http_port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
            ],
        )
        self.wait_for("gunicorn to answer", self.http_answers, seconds=60)

    def http_answers(self) -> bool:
        try:
            # self.base is http://127.0.0.1:<port>, set in __init__.
            with urllib.request.urlopen(self.base + "/login/", timeout=5) as response:  # noqa: S310
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def start_worker(self, name: str = "worker", concurrency: int = 2):
        return self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "partnerops",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "warning",
                "--hostname",
                f"{name}@faults-{self.name}",
            ],
        )

    def start_beat(self, name: str = "beat", loglevel: str = "warning"):
        return self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "partnerops",
                "beat",
                "--loglevel",
                loglevel,
                "--schedule",
                str(self.work / f"{name}-schedule"),
            ],
        )

    def start_smtp(self, delay: float = 0.0):
        self.start(
            "smtp",
            [
                PY,
                str(Path(__file__).with_name("smtp_sink.py")),
                "--port",
                str(self.smtp_port),
                "--out",
                str(self.mail_log),
                "--delay",
                str(delay),
            ],
        )
        self.wait_for("the SMTP sink", self._smtp_answers, seconds=20)

    def _smtp_answers(self) -> bool:
        import socket

        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as sock,
        ):
            return sock.recv(64).startswith(b"220")
        return False

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str, sig: int = signal.SIGTERM, wait: float = 30):
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group this stack created for it, no other
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # ---- what the SMTP sink received ----

    def mails(self) -> list[dict]:
        if not self.mail_log.exists():
            return []
        lines = self.mail_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # ---- helpers ----

    @staticmethod
    def wait_for(what, check, seconds: float, every: float = 0.25):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(every)
        raise TimeoutError(f"timed out after {seconds:g}s waiting for {what}")

    def tail_logs(self, lines: int = 30):
        for log in sorted(self.work.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {log.name}", file=sys.stderr)
            print("\n".join(text), file=sys.stderr)

    def _on_signal(self, signum, frame):
        self.close()
        raise SystemExit(128 + signum)

    def close(self):
        if self._closed:
            return
        self._closed = True
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM, wait=15)
        if self._redis_started:
            with contextlib.suppress(Exception):
                self.stop_redis()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self._created:
            with contextlib.suppress(Exception):
                psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        if not os.environ.get("FAULTS_KEEP_WORK"):
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and exc[0] is not SystemExit:
            self.tail_logs()
        self.close()


# ---- an HTTP client that keeps its cookies and shows redirects as they are ----


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Response:
    __slots__ = ("status", "location", "body", "ms")

    def __init__(self, status, location, body, ms):
        self.status, self.location, self.body, self.ms = status, location, body, ms

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Browser:
    def __init__(self, base: str, timeout: float = 60):
        self.base, self.timeout = base.rstrip("/"), timeout
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def csrf(self) -> str:
        for cookie in self.jar:
            if cookie.name == "csrftoken":
                return cookie.value
        self.request("GET", "/login/")
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def request(self, method: str, path: str, data=None, *, body=None, headers=None) -> Response:
        headers = dict(headers or {})
        if method == "POST" and body is None:
            fields = list(data.items()) if isinstance(data, dict) else list(data or [])
            expanded = []
            for key, value in fields:
                for item in value if isinstance(value, list) else [value]:
                    expanded.append((key, item))
            expanded.append(("csrfmiddlewaretoken", self.csrf()))
            body = urllib.parse.urlencode(expanded).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if method == "POST":
            headers.setdefault("X-CSRFToken", self.csrf())
            headers.setdefault("Referer", self.base + path)
        request = urllib.request.Request(  # noqa: S310 - self.base is http://127.0.0.1:<port>
            self.base + path, data=body, headers=headers, method=method
        )
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                status, location, content = (
                    response.status,
                    response.headers.get("Location"),
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            status, location, content = error.code, error.headers.get("Location"), error.read()
        return Response(status, location, content, (time.perf_counter() - started) * 1000)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, data=None, **kwargs) -> Response:
        return self.request("POST", path, data, **kwargs)

    def login(self, username: str) -> "Browser":
        self.get("/login/")
        response = self.post("/login/", {"username": username, "password": PASSWORD})
        if response.status != 302 or "/login/" in (response.location or ""):
            raise SystemExit(f"login as {username} failed: {response.status}")
        return self


# ---- figures ----


def median(values) -> float:
    return statistics.median(values) if values else 0.0


def report(fault: str, figures: dict, failures: list[str]) -> int:
    """One line of figures; the targets that failed on stderr; the exit status."""
    line = " ".join(f"{key}={value}" for key, value in figures.items())
    print(f"fault {fault}: {line}", flush=True)
    for failure in failures:
        print(f"fault {fault}: FAILED: {failure}", file=sys.stderr, flush=True)
    return 1 if failures else 0


def size_args(description: str):
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--small", action="store_true", help="the CI size: a few seconds to a minute"
    )
    parser.add_argument("--http-port", type=int, default=8300)
    parser.add_argument("--smtp-port", type=int, default=8400)
    parser.add_argument("--redis-port", type=int, default=6393)
    return parser


# ---- run_all.sh: one migrated, seeded database and one static build for every fault ----


def _template(action: str, name: str, static_root: str):
    """`create`: migrate and seed `name` once (the faults copy it); `drop`: remove it."""
    if action == "drop":
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    os.environ.pop("FAULTS_TEMPLATE_DB", None)
    os.environ["FAULTS_STATIC_ROOT"] = static_root
    stack = Stack("template", http_port=0, smtp_port=0)
    stack.db = name
    stack._closed = True  # keep the database: it is the template
    stack.prepare_database()
    shutil.rmtree(stack.work, ignore_errors=True)


if __name__ == "__main__":
    _template(*sys.argv[1:4])
