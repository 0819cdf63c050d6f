"""The roles' data migration is frozen: it carries its own permission lists and reads no live
code, and those lists are still what `accounts.roles` says (a change there needs a new
migration, which this test asks for by failing)."""

import ast
import importlib
import inspect

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from accounts.roles import ROLE_PERMISSIONS, sync_roles

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("accounts.migrations.0001_roles")


def _groups():
    return {
        group.name: sorted(
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()
        )
        for group in Group.objects.prefetch_related("permissions__content_type")
    }


def test_the_migration_imports_no_project_code():
    tree = ast.parse(inspect.getsource(MIGRATION))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"django"}, imported


def test_the_frozen_lists_are_the_live_ones():
    live = {role.value: tuple(codenames) for role, codenames in ROLE_PERMISSIONS.items()}
    assert live == MIGRATION.ROLE_PERMISSIONS, (
        "accounts.roles.ROLE_PERMISSIONS changed: add a data migration that sets the new "
        "permissions (copy the lists into it), then update this comparison to that migration."
    )


def _historical_apps():
    """The app registry as the migration sees it when `migrate` runs it."""
    loader = MigrationLoader(connection)
    return loader.project_state(("accounts", "0001_roles")).apps


def test_the_migration_creates_exactly_the_frozen_groups_and_so_does_sync_roles():
    # From no groups at all (a fresh database), with the models as they were then.
    Group.objects.all().delete()
    MIGRATION.create_roles(_historical_apps(), schema_editor=None)
    migrated = _groups()
    assert migrated == {
        name: sorted(codenames) for name, codenames in MIGRATION.ROLE_PERMISSIONS.items()
    }
    # Run again over groups that drifted, it puts them back.
    Group.objects.get(name="CAR").permissions.clear()
    MIGRATION.create_roles(_historical_apps(), schema_editor=None)
    assert _groups() == migrated
    # The live helper (the `roles` fixture's) builds the same groups.
    Group.objects.all().delete()
    sync_roles(apps)
    assert _groups() == migrated
