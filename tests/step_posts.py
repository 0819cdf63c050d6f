"""Cases at a given step, and the POST a person would send to complete that step.

Shared by the view tests (permissions, bad input). Cases are driven through the real
services by `CaseFactory`; nothing here touches the database behind the services' back.
"""

import datetime as dt

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from offboarding.money.services import record_payment
from tests.factories import CaseFactory, PartnerFactory

CHECKLIST = ("status_reason", "opted_out", "distribution_group", "landing_pages")

# Who may complete each step (the `roles` fixture's usernames). The CAM lanes are for the
# partner's own CAM only; step 9 is for a CAR member who recorded no payment (car paid).
LANE_USERS = {
    2: {"cam"},
    3: {"cam"},
    4: {"cam"},
    5: {"salesops"},
    6: {"salesops"},
    7: {"car", "car2"},
    8: {"car", "car2"},
    9: {"car2"},
    10: {"cam"},
    11: {"car", "car2"},
    12: {"portaladmin"},
    13: {"portaladmin"},
}
# Users who cannot see a case of a partner managed by `cam` at all.
BLIND_USERS = {"cam2", "nobody"}
USERS = ("cam", "cam2", "salesops", "car", "car2", "portaladmin", "manager", "nobody")

# The state each step's valid POST leads to, on the paths `case_at` chooses.
NEXT_STATE = {
    2: "step_5",  # legal action
    3: "step_4",
    4: "step_5",
    5: "step_6",
    6: "step_7",
    7: "step_8",  # money on the table
    8: "step_9",
    9: "step_10",
    10: "step_11",  # beta portal
    11: "step_12",
    12: "step_13",
    13: "done",
}


def case_at(step, roles):
    """A case of a partner managed by roles['cam'] whose active step is `step`."""
    money = step in (7, 8, 9)
    partner = PartnerFactory(cam=roles["cam"], beta=step >= 10)
    case = CaseFactory(
        state=f"step_{step}",
        company=step != 3,
        legal=step == 5,
        money=money,
        actors=roles,
        partner=partner,
    )
    assert case.state == f"step_{step}", case.state
    if step == 8:
        # CAR (car) pays every payout first, so step 8's condition holds.
        for payout in case.outstanding_payouts():
            record_payment(
                actor=roles["car"],
                case_id=case.pk,
                payout_id=payout.pk,
                amount=payout.amount,
                paid_on=timezone.localdate(),
                reference=f"ACH-{payout.reference}",
            )
        assert not case.outstanding_payouts().exists()
    return case


def step_post(case, step, *, expected_state=None):
    """Valid POST data (with files) for `step` of `case`, as the case page would send."""
    today = timezone.localdate()
    data = {"expected_state": expected_state or case.state, "note": "test"}
    if step == 2:
        data |= {
            "legal_action": "yes",
            "notice_date": today.isoformat(),
            "evidence": SimpleUploadedFile("x.pdf", b"%PDF-1.4 legal", "application/pdf"),
        }
    elif step == 3:
        data |= {
            "notice_date": today.isoformat(),
            "notice_channel": "email",
            "requested_exit_date": (today + dt.timedelta(days=45)).isoformat(),
        }
    elif step == 5:
        for item in CHECKLIST:
            data[f"{item}_done"] = "on"
            data[f"{item}_reference"] = f"QB-{item}"
    elif step == 6:
        data["licence"] = str(case.partner.licences.get(is_membership=True).pk)
    elif step == 7:
        data["money_on_table"] = "yes" if case.outstanding_payouts().exists() else "no"
        data["confirm"] = "on"
    elif step == 10:
        data["portal"] = case.partner.portal
        data["confirm"] = "on"
    else:  # 4, 8, 9, 11, 12, 13: a confirmation
        data["confirm"] = "on"
    return data
