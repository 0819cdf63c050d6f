"""The fault suite's authorization matrix (scripts/faults/authz_matrix.py), in-process.

The same matrix the suite runs over HTTP against gunicorn: every URL pattern with real ids,
every demo role and anonymous; a GET or a valid POST that the rules in offboarding/access.py
and partners/access.py refuse must not reach the page or change anything, money pages show
no payment to a role refused the statement, and each action works for a role that may do it.
"""

import sys
from pathlib import Path

import pytest
from django.test import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "faults"))

import authz_matrix

pytestmark = pytest.mark.django_db


class _Response:
    def __init__(self, response):
        self.status = response.status_code
        self.location = response.get("Location")
        self.body = b"".join(response.streaming_content) if response.streaming else response.content


class _Client:
    """Django's test client with the matrix's interface (get/post giving status, location,
    body)."""

    def __init__(self, user):
        self.client = Client()
        if user is not None:
            self.client.force_login(user)

    def get(self, url):
        return _Response(self.client.get(url))

    def post(self, url, data):
        return _Response(self.client.post(url, data))


def test_no_role_reaches_what_the_rules_refuse():
    from offboarding.demo import seed

    seed()
    world = authz_matrix.build_world()
    clients = {name: _Client(world["users"][name]) for name in authz_matrix.DEMO_USERS}
    clients[None] = _Client(None)

    outcome = authz_matrix.run(world, clients)

    figures, details = outcome["figures"], "\n".join(outcome["details"])
    assert figures["violations"] == 0, details
    assert figures["money_leaks"] == 0, details
    assert figures["errors_500"] == 0, details
    # The refusals mean something: every action works for a role that may do it, and the
    # money pages do show payments to those who may read them.
    assert figures["allowed_without_effect"] == 0, details
    assert figures["actions_nobody_may_do"] == 0, details
    assert figures["actions"] >= 20
    assert figures["money_shown_to_readers"] > 0
    assert figures["patterns"] > 100  # admin's included
