"""The Python instructions each benchmark page costs, counted by valgrind's callgrind.

`make bench` measures latency under load, which moves with the machine from hour to hour;
an instruction count does not (the same code and data give the same count, whatever else
the machine is doing). It counts the Django process's side of a request only: not
PostgreSQL's planning and execution, not gunicorn's HTTP parsing, not the load generator.

For each page it runs the page in-process (Django's test client, production settings,
logged in as the page's user of the bench plan) 5 and 25 times, each under callgrind,
and prints (I(25) - I(5)) / 20 instructions a request, and its ratio to the floor's.
Needs valgrind and the bench database that `make bench` fills (BENCH_DATABASE_URL).

Usage: python -m bench.instructions [PAGE ...]   (default: every page and peer)
       each page takes one to three minutes
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import run

ROOT = Path(__file__).resolve().parent.parent

WARM_UP = 5
RUNS = (5, 25)


def requests(page: dict, count: int) -> None:
    """In a child process: `count` requests of `page` after WARM_UP of them."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=page["user"]))
    for _ in range(WARM_UP + count):
        response = client.get(page["path"])
        if response.status_code != 200:
            sys.exit(f"{page['path']} answered {response.status_code}")


def instructions(env: dict, name: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            name,
            str(count),
        ]
        # No shell: valgrind (from the PATH, as `make bench-instructions` expects) running
        # this interpreter on this module with fixed arguments.
        result = subprocess.run(  # noqa: S603
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            sys.exit(f"bench_instructions: {name} failed:\n{result.stderr[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"bench_instructions: callgrind wrote no total for {name}")


def main(argv: list[str]) -> int:
    database_url = os.environ.get("BENCH_DATABASE_URL", run.DEFAULT_URL)
    if argv[:1] == ["--child"]:
        pages = run.stored_page_plan(database_url, "bench_instructions", [argv[1]])
        requests(pages[argv[1]], int(argv[2]))
        return 0
    pages = run.stored_page_plan(database_url, "bench_instructions", argv)
    env = run.bench_env(database_url, allowed_hosts="testserver")
    names = argv or list(pages)
    if "floor" not in names:
        names.insert(0, "floor")
    floor = None
    for name in names:
        few, many = (instructions(env, name, count) for count in RUNS)
        per_request = (many - few) / (RUNS[1] - RUNS[0])
        floor = floor or per_request
        ratio = per_request / floor
        print(f"{name:24} {per_request / 1e6:8.2f} M instructions/request {ratio:6.2f}× floor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
