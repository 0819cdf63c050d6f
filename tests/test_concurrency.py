"""Two people submitting the same step at the same moment: exactly one step is recorded."""

import pytest
from django_fsm import ConcurrentTransition

from offboarding import services
from offboarding.demo import step_data
from offboarding.models import Case, CaseEvent, EventKind
from tests.factories import CaseFactory
from tests.race import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_submissions_of_a_step_record_it_once(roles):
    case = CaseFactory(state="step_5", actors=roles)
    data = step_data(case)

    def submit():
        return services.complete_step(
            actor=roles["salesops"],
            case_id=case.pk,
            step_number=5,
            expected_state="step_5",
            data=data,
        )

    results = race([submit, submit])

    moved_on = [r for r in results if isinstance(r, services.CaseMovedOn)]
    succeeded = [r for r in results if isinstance(r, Case)]
    assert len(succeeded) == 1, results
    assert len(moved_on) == 1, results
    assert (
        CaseEvent.objects.filter(case=case, step_number=5, kind=EventKind.STEP_COMPLETED).count()
        == 1
    )
    case.refresh_from_db()
    assert case.state == "step_6"


def test_two_concurrent_payments_with_one_reference_record_one(roles):
    case = CaseFactory(state="step_8", money=True, actors=roles)
    payout = case.outstanding_payouts().first()
    from offboarding.money.services import record_payment
    from payouts.models import Payment

    def pay():
        return record_payment(
            actor=roles["car"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=payout.amount,
            paid_on=payout.earned_on,
            reference="ACH-SAME",
        )

    results = race([pay, pay])

    assert sum(isinstance(r, Payment) for r in results) == 1, results
    assert sum(isinstance(r, services.ActionRefused) for r in results) == 1, results
    assert Payment.objects.filter(payout=payout).count() == 1


def test_a_stale_instance_cannot_overwrite_a_newer_state(roles):
    case = CaseFactory(state="step_4", actors=roles)
    stale = Case.objects.get(pk=case.pk)
    services.complete_step(
        actor=roles["cam"], case_id=case.pk, step_number=4, expected_state="step_4", data={}
    )

    stale.confirm_sales_ops_handoff(by=roles["cam"], data={})
    with pytest.raises(ConcurrentTransition):
        stale.save()
