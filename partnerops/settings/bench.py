"""`make bench`: the production settings plus the benchmark app.

The benchmark measures the product as deployed, so this adds only what it needs to measure:
the floor page (bench/urls.py) and the request-cost headers (bench/middleware.py), outermost
so they count every query a request runs. Nothing else in the settings or URLs knows of it.
"""

from .prod import *  # noqa: F403
from .prod import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
MIDDLEWARE = ["bench.middleware.RequestCostMiddleware", *MIDDLEWARE]
ROOT_URLCONF = "bench.urls"
