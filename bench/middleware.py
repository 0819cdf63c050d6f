"""What each request cost, in response headers the benchmark reads.

`X-Query-Count` is the number of SQL queries the request ran (session, user and context
processors included); `Server-Timing` is the time the request spent in Django (`app`) and, of
that, waiting on the database (`db`), so the benchmark can say how much of each page's latency
is Python, SQL and queueing.
"""

from time import perf_counter

from django.db import connection


class RequestCostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0
        in_database = 0.0

        def counter(execute, sql, params, many, context):
            nonlocal count, in_database
            count += 1
            began = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                in_database += perf_counter() - began

        began = perf_counter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        in_app = perf_counter() - began
        response["X-Query-Count"] = str(count)
        response["Server-Timing"] = f"app;dur={in_app * 1000:.3f}, db;dur={in_database * 1000:.3f}"
        return response
