"""Locust plan for `make bench`: bench/run.py writes the plan and reads the samples.

The run is cut into phases of `phase_seconds`, one page each (every page, `rounds` times),
and every simulated user requests the current phase's page as fast as it is answered. So
each page, the floor page included, is measured alone at the same concurrency, in the same
run. Each request's own timing is kept (not Locust's rounded buckets), with the time the
server says it spent in Django and in the database, and written to the plan's `samples`
file when Locust quits.

Environment: PARTNEROPS_BENCH_PLAN = path of the plan (JSON):
    {"pages": [{"name", "url", "cookie"}], "phase_seconds", "rounds", "samples"}

Each page's URL is absolute: the full and the quarter data sets are served by two gunicorns.
"""

import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task

with open(os.environ["PARTNEROPS_BENCH_PLAN"]) as plan_file:
    PLAN = json.load(plan_file)
SCHEDULE = [page for _ in range(PLAN["rounds"]) for page in PLAN["pages"]]
PHASE = float(PLAN["phase_seconds"])
SAMPLES: list = []
CLOCK = {"start": None, "quitting": False}


class Visitor(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        # Sessions come from the plan's cookies; responses must not replace them.
        self.client.client.cookiejar = None
        if CLOCK["start"] is None:
            CLOCK["start"] = time.perf_counter()

    @task
    def visit(self):
        start = CLOCK["start"]
        index = int((time.perf_counter() - start) // PHASE)
        if index >= len(SCHEDULE):
            if not CLOCK["quitting"]:
                CLOCK["quitting"] = True
                # From its own greenlet: quit() stops the users, this one included.
                gevent.spawn(self.environment.runner.quit)
            time.sleep(0.1)
            return
        page = SCHEDULE[index]
        began = time.perf_counter()
        with self.client.get(
            page["url"],
            headers={"Cookie": page["cookie"]},
            name=page["name"],
            allow_redirects=False,
            catch_response=True,
        ) as response:
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            size = len(response.content or b"")
            timing = response.headers.get("Server-Timing")
        SAMPLES.append(
            [
                page["name"],
                index,
                round(began - start - index * PHASE, 4),
                round(elapsed * 1000, 3),
                size,
                response.status_code,
                timing,
            ]
        )


@events.quitting.add_listener
def write_samples(environment, **kwargs):
    with open(PLAN["samples"], "w") as samples_file:
        json.dump(SAMPLES, samples_file)
