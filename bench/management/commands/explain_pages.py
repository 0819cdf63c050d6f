"""EXPLAIN (ANALYZE, BUFFERS) every query a page runs, as the page runs it (`make bench`).

Each page is requested in-process as its user; every SELECT it ran, apart from the
session and user look-ups every page shares, is explained with the parameters it was
run with. On PostgreSQL only, and only on a database whose name contains "bench": the
plans are those of the data set the benchmark measured.

    manage.py explain_pages --plan pages.json [--out explain.txt]

pages.json: [{"name": ..., "path": ..., "user": ...}, ...]
"""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.data import database_name

# Every page reads its session and its user first, by primary key.
SHARED = ('FROM "django_session" WHERE', 'FROM "auth_user" WHERE "auth_user"."id" = ')


def page_queries(client, path) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    if response.status_code != 200:
        raise CommandError(f"{path} answered HTTP {response.status_code}")
    selects = [query["sql"] for query in captured.captured_queries]
    return [
        sql
        for sql in selects
        if sql.lstrip().upper().startswith("SELECT") and not any(m in sql for m in SHARED)
    ]


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


class Command(BaseCommand):
    help = "EXPLAIN ANALYZE each query of the benchmark's pages."

    def add_arguments(self, parser):
        parser.add_argument("--plan", required=True, help="JSON list of {name, path, user}")
        parser.add_argument("--out", help="write the plans to this file (default: stdout)")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or "bench" not in database_name():
            raise CommandError("explain_pages runs on a PostgreSQL database named *bench*.")
        try:
            with open(options["plan"]) as plan_file:
                pages = json.load(plan_file)
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read the page plan {options['plan']}: {error}") from None
        users = get_user_model().objects
        host = (settings.ALLOWED_HOSTS or ["127.0.0.1"])[0]
        out = []
        for page in pages:
            client = Client(HTTP_HOST=host)
            client.force_login(users.get(username=page["user"]))
            client.get(page["path"])  # warm: the plans below are of a page in use
            queries = page_queries(client, page["path"])
            out.append(f"## {page['name']} — GET {page['path']} as {page['user']}\n")
            for number, sql in enumerate(queries, 1):
                plan = explain(sql)
                out.append(f"### query {number}\n\n```sql\n{sql}\n```\n\n```\n{plan}\n```\n")
        text = "\n".join(out)
        if options.get("out"):
            with open(options["out"], "w") as out_file:
                out_file.write(text)
        else:
            self.stdout.write(text)
