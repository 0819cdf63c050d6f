# The project's skip of PostgreSQL-only tests on SQLite, also when bench/tests runs alone
# (tests/conftest.py is only loaded when tests/ is collected too; twice is harmless).
from tests.conftest import pytest_collection_modifyitems  # noqa: F401
