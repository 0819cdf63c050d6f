"""Where each benchmark page's time goes: SQL, and the Python around it, next to the floor's.

For each page it serves the page in-process (Django's test client, production settings,
logged in as the page's user of the bench plan, one client, no load), then runs the same
SQL the page ran, raw (cursor.execute and fetchall, no ORM), and prints per request:

- page ms: the whole request, median of the rounds;
- SQL ms: the page's queries run raw, the least the page can spend in the database with
  its current queries (round trips included);
- Python ms: page ms - SQL ms: Django, the ORM, forms, templates, our code;
- own Python ms: Python ms - the floor's Python ms, what the page adds to the stack's floor.

The peers (the Django admin pages of `make bench`) can be named too. The latency ratios of
`make bench` are lower than these (under load, PostgreSQL runs on the other core while
Python waits); these say where each page's time goes. Needs the bench database that
`make bench` fills (BENCH_DATABASE_URL).

Usage: python -m bench.budget [--rounds N] [--requests N] [PAGE ...]
"""

import argparse
import os
import statistics
import sys
import time

from bench import run


def measure(pages: list[dict], rounds: int, requests: int) -> dict[str, dict]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    clients, queries = {}, {}
    for page in pages:
        client = clients[page["name"]] = Client()
        client.force_login(get_user_model().objects.get(username=page["user"]))
        captured = queries[page["name"]] = []

        def capture(execute, sql, params, many, context, captured=captured):
            captured.append((sql, params))
            return execute(sql, params, many, context)

        for _ in range(3):  # warm: templates, URL resolvers, the connection
            response = client.get(page["path"])
        with connection.execute_wrapper(capture):
            response = client.get(page["path"])
        if response.status_code != 200:
            sys.exit(f"bench_budget: {page['path']} answered {response.status_code}")

    times: dict[str, dict[str, list]] = {p["name"]: {"page": [], "sql": []} for p in pages}
    for _ in range(rounds):  # interleaved, so a slow moment of the machine hits every page
        for page in pages:
            client = clients[page["name"]]
            began = time.perf_counter()
            for _ in range(requests):
                client.get(page["path"])
            times[page["name"]]["page"].append((time.perf_counter() - began) / requests)
            began = time.perf_counter()
            for _ in range(requests):
                for sql, params in queries[page["name"]]:
                    with connection.cursor() as cursor:
                        cursor.execute(sql, params)
                        cursor.fetchall()
            times[page["name"]]["sql"].append((time.perf_counter() - began) / requests)
    return {
        name: {
            "queries": len(queries[name]),
            "page_ms": statistics.median(spent["page"]) * 1000,
            "sql_ms": statistics.median(spent["sql"]) * 1000,
        }
        for name, spent in times.items()
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20, help="per page and round")
    parser.add_argument("pages", nargs="*")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be at least 1")
    database_url = os.environ.get("BENCH_DATABASE_URL", run.DEFAULT_URL)
    plan = run.stored_page_plan(database_url, "bench_budget", args.pages)
    default = [name for name, page in plan.items() if page["kind"] == "page"]
    names = ["floor", *(name for name in args.pages or default if name != "floor")]
    os.environ.update(run.bench_env(database_url, allowed_hosts="testserver"))
    results = measure([plan[name] for name in names], args.rounds, args.requests)

    floor = results["floor"]
    floor_python = floor["page_ms"] - floor["sql_ms"]
    print(
        f"{'page':<28} {'queries':>7} {'page ms':>8} {'SQL ms':>7} {'Python ms':>9} "
        f"{'x floor':>7} {'own Python ms':>13}"
    )
    for name in names:
        row = results[name]
        python = row["page_ms"] - row["sql_ms"]
        print(
            f"{name:<28} {row['queries']:>7} {row['page_ms']:>8.2f} {row['sql_ms']:>7.2f} "
            f"{python:>9.2f} {row['page_ms'] / floor['page_ms']:>7.2f} "
            f"{python - floor_python:>13.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
