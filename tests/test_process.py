"""One home per step: process.STEPS declares each step, and everything else derives from it.

The case states and their labels, the transitions' sources, the forms, the rules, the
notifications and the step-specific behaviour (four eyes, the money panel, the ledger) are
read from `Step`; these tests fail when a copy drifts or a pointer names nothing.
"""

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from notifications.models import NotificationKind
from offboarding import services, step_rules
from offboarding.demo import request_data
from offboarding.forms import STEP_FORMS, ResignationForm, StepForm
from offboarding.models import Case, _nothing_outstanding
from offboarding.process import LEDGER_STEP, STEPS, CaseState, Lane, Step
from tests.factories import CaseFactory, PartnerFactory

ROOT = Path(__file__).resolve().parent.parent
APPS = ("offboarding", "payouts", "notifications", "partners", "accounts", "core", "templates")


def test_case_state_is_the_steps_then_done_and_withdrawn():
    assert CaseState.choices == [
        *((step.state, f"{step.number} · {step.short_label}") for step in STEPS),
        ("done", "Done"),
        ("withdrawn", "Withdrawn"),
    ]
    assert [member.name for member in CaseState] == [
        *(f"STEP_{step.number}" for step in STEPS),
        "DONE",
        "WITHDRAWN",
    ]
    assert CaseState.STEP_8 == "step_8" == LEDGER_STEP.state


def test_the_migrations_hold_the_same_state_choices():
    """A label changed in STEPS without a migration would leave makemigrations dirty."""
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    field = state.apps.get_model("offboarding", "Case")._meta.get_field("state")
    assert list(field.choices) == CaseState.choices


def _step_attributes_used() -> set[tuple[str, str]]:
    """Every `step.x` (and `current_step.x`, `LEDGER_STEP.x`, ...) read in the apps and
    templates, with the file that reads it."""
    pattern = re.compile(r"\b(?:step|current_step|first_step|LEDGER_STEP)\.([a-z_]+)")
    used = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*"):
            if path.suffix in (".py", ".html") and "migrations" not in path.parts:
                for name in pattern.findall(path.read_text(encoding="utf-8")):
                    used.add((name, str(path.relative_to(ROOT))))
    return used


def test_every_step_attribute_read_is_declared_on_step():
    declared = {field.name for field in dataclasses.fields(Step)} | {
        name for name in vars(Step) if not name.startswith("_")
    }
    used = _step_attributes_used()
    assert {"four_eyes", "money_panel", "ledger"} <= {name for name, _ in used}
    assert sorted(use for use in used if use[0] not in declared) == []


def test_no_step_is_singled_out_by_its_number_outside_process():
    """Step-specific behaviour is a Step attribute, not `step.number == 9` in some app."""
    pattern = re.compile(
        r"(?:number|step_number)\s*(?:==|!=|in \()|state\s*[!=]=\s*[\"']step_\d|STEP_\d+\b"
    )
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path.name in ("process.py", "models.py"):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize("step", STEPS, ids=lambda step: f"step_{step.number}")
def test_each_steps_pointers_name_what_exists(step):
    transition = getattr(Case, step.transition)._django_fsm.get_transition(step.state)
    assert transition is not None, f"{step.transition} does not start from {step.state}"
    assert (_nothing_outstanding in transition.conditions) == step.settles_money
    form = STEP_FORMS[step.number]
    assert issubclass(form, StepForm) and form.__name__ == step.form and form.step is step
    if step.rule:
        assert callable(getattr(step_rules, step.rule))
    assert step.notification_kind in NotificationKind.values
    assert not step.snapshot or step.snapshot in services._SNAPSHOTS
    assert not step.four_eyes or step.lane == Lane.CAR  # Decision B is about payments


def test_exactly_one_ledger_step_and_one_four_eyes_step():
    assert [step.number for step in STEPS if step.ledger] == [LEDGER_STEP.number]
    assert len([step for step in STEPS if step.four_eyes]) == 1
    assert all(step.money_panel for step in STEPS if step.ledger or step.four_eyes)


# ---- one rule, asked by the form and by the service ----


@pytest.mark.django_db
def test_the_form_and_the_service_refuse_a_short_resignation_with_one_message(roles):
    case = CaseFactory(actors=roles, company=False, state="step_3")
    notice = timezone.localdate() - dt.timedelta(days=1)
    data = {
        "notice_date": notice,
        "notice_channel": "email",
        "requested_exit_date": notice + dt.timedelta(days=20),
    }
    form = ResignationForm(
        {**{k: str(v) for k, v in data.items()}, "expected_state": case.state}, case=case
    )
    assert not form.is_valid()
    (message,) = form.errors["requested_exit_date"]
    assert "(20 days given)" in message
    with pytest.raises(services.ActionRefused) as refused:
        services.complete_step(
            actor=roles["cam"],
            case_id=case.pk,
            step_number=3,
            expected_state=case.state,
            data=data,
        )
    assert str(refused.value) == message
    case.refresh_from_db()
    assert case.state == "step_3"


@pytest.mark.django_db
def test_legal_action_without_documents_is_refused_by_the_service_too(roles):
    case = CaseFactory(actors=roles, state="step_2")
    with pytest.raises(services.ActionRefused, match="Legal action needs its supporting"):
        services.complete_step(
            actor=roles["cam"],
            case_id=case.pk,
            step_number=2,
            expected_state=case.state,
            data={"legal_action": True, "notice_date": timezone.localdate()},
        )
    case.refresh_from_db()
    assert case.state == "step_2"


@pytest.mark.django_db
def test_a_request_dated_in_the_future_is_refused_by_the_service_too(roles):
    partner = PartnerFactory(cam=roles["cam"])
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    with pytest.raises(services.ActionRefused, match="The request date cannot be in the future"):
        services.open_case(
            actor=roles["cam"],
            partner_id=partner.pk,
            data=request_data(company=True, received_on=tomorrow),
        )
    assert not partner.offboarding_cases.exists()
