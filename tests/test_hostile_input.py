"""Input no browser sends but a hand-made request, a script or an old export can: each gets a
clear answer (a 400 naming what is wrong, a page, a rejected import), never a 500, and
nothing stored changes. Each case here answered 500 before (found by fuzzing every URL)."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from offboarding.models import STORED_NAME_BYTES, EvidenceFile, stored_name
from offboarding.money.importers import ImportRejected, import_csv
from payouts.models import Payout
from payouts.money import to_money
from tests.factories import CaseFactory, PartnerFactory
from tests.step_posts import step_post

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # more than a 64-bit id, LIMIT or OFFSET holds


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.mark.parametrize(
    "url",
    [
        "/cases/?q=%00",
        "/cases/?state=open%00",
        "/partners/?q=ab%00c",
        "/work/?page=%00",
        "/admin/offboarding/case/?state=%00",
        "/admin/partners/partner/?q=%00",
    ],
)
def test_a_nul_character_in_the_address_is_a_400_that_names_the_field(
    client, roles, superuser, url
):
    for user in (roles["manager"], superuser):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 400
        text = response.content.decode()
        assert "NUL character (%00)" in text
        assert f"“{url.split('?')[1].split('=')[0]}”" in text


def test_a_nul_character_in_a_form_is_a_400_and_changes_nothing(client, roles):
    case = CaseFactory(actors=roles, state="step_8", money=True)
    client.force_login(roles["car"])
    response = client.post(
        reverse("roll_up_commissions", args=[case.pk]), {"expected_state": "step_8\x00"}
    )
    assert response.status_code == 400
    assert "“expected_state”" in response.content.decode()
    case.refresh_from_db()
    assert case.state == "step_8"


def _case_ids(response):
    """The cases the page's table lists, by the "#id" links of its rows."""
    return [
        int(pk) for pk in re.findall(r'<a href="/cases/\d+/">#(\d+)</a>', response.content.decode())
    ]


def _chosen_cam(response):
    """The CAM the case list's filter shows as chosen (an option value), or None."""
    cam_select = response.content.decode().split('id="case-cam"', 1)[1].split("</select>")[0]
    chosen = re.findall(r'<option value="([^"]*)" selected', cam_select)
    return chosen[0] if chosen else None


def _inbox_titles(response):
    listed = response.content.decode().split('<ul class="list-group">', 1)[1].split("</ul>")[0]
    return re.findall(r'<div class="fw-semibold">(.*?)</div>', listed)


def test_the_case_list_ignores_a_cam_that_cannot_be_an_id(client, roles):
    CaseFactory(actors=roles)
    client.force_login(roles["manager"])
    everyone = client.get(reverse("case_list"))
    assert len(_case_ids(everyone)) == 1
    for cam in ("²", "١٢", HUGE, "-1", "1.5"):
        response = client.get(reverse("case_list"), {"cam": cam})
        assert response.status_code == 200
        assert _chosen_cam(response) is None  # "All"
        assert _case_ids(response) == _case_ids(everyone)
    chosen = client.get(reverse("case_list"), {"cam": str(roles["cam"].pk)})
    assert _chosen_cam(chosen) == str(roles["cam"].pk)


def test_my_work_and_the_inbox_answer_a_page_past_any_table(client, roles):
    CaseFactory(actors=roles)
    Notification.objects.create(recipient=roles["cam"], kind="step_due", title="Due")
    client.force_login(roles["cam"])
    for page in (HUGE, str(2**63 - 1), str(2**61)):
        # The last page, as Django's get_page shows: here the only one.
        work = client.get(reverse("my_work"), {"page": page})
        assert work.status_code == 200
        assert len(_case_ids(work)) == 1
        inbox = client.get(reverse("inbox"), {"page": page})
        assert inbox.status_code == 200
        assert _inbox_titles(inbox) == ["Due"]


def _payouts_csv(*rows: str) -> bytes:
    header = "partner_record_id,reference,description,earned_on,amount,currency,status"
    return "\n".join([header, *rows]).encode()


@pytest.mark.parametrize(
    "content, line, message",
    [
        (
            _payouts_csv(f"QB-H-1,P-1,x,{dt.date(2026, 1, 5)},{'1' * 29},USD,open"),
            2,
            "is too large to be an amount",
        ),
        (
            _payouts_csv(f"QB-H-1,P-1,{'x' * 140_000},2026-01-05,10.00,USD,open"),
            2,
            "cannot be read as CSV: field larger than field limit",
        ),
        (
            _payouts_csv("QB-H-1,P-1,x,2026-01-05,10.00,USD,open", "QB-H-1\x00,P-2,x"),
            3,
            "holds a NUL character",
        ),
    ],
    ids=["amount-of-29-digits", "cell-of-140000-characters", "nul-character"],
)
def test_an_import_the_csv_module_or_decimal_refuse_is_rejected_with_its_line(
    content, line, message
):
    PartnerFactory(record_id="QB-H-1")
    with pytest.raises(ImportRejected) as rejected:
        import_csv("payouts", content)
    [(error_line, error)] = rejected.value.report.errors
    assert error_line == line
    assert message in error
    assert not Payout.objects.exists()


def test_an_import_with_old_mac_line_ends_is_read_line_by_line():
    partner = PartnerFactory(record_id="QB-H-1")
    earned = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    content = _payouts_csv(
        f"QB-H-1,P-1,first,{earned},10.00,USD,open",
        f'QB-H-1,P-2,"two\rlines",{earned},20.00,USD,open',
    ).replace(b"\n", b"\r")
    report = import_csv("payouts", content)
    assert report.created == 2
    assert dict(Payout.objects.filter(partner=partner).values_list("reference", "description")) == {
        "P-1": "first",
        "P-2": "two\rlines",
    }


def test_money_too_large_for_cents_is_a_validation_error():
    with pytest.raises(ValidationError, match="too large to be an amount"):
        to_money("1" * 29)
    assert str(to_money("1" * 12 + ".50")) == "1" * 12 + ".50"


@pytest.mark.parametrize(
    "name, stored",
    [
        ("evidence.pdf", "evidence.pdf"),
        ("日" * 120 + ".pdf", "日" * 65 + ".pdf"),  # 3 bytes a character: 65 × 3 + 4 ≤ 200
        ("a" * 400 + ".pdf", "a" * 196 + ".pdf"),
        ("b" * 300, "b" * 200),  # no extension
        ("c" * 250 + ".not-an-extension-at-all", ("c" * 250 + ".not-an-extension-at-all")[:200]),
    ],
)
def test_a_long_evidence_name_is_shortened_on_disk_to_whole_characters(name, stored):
    assert stored_name(name) == stored
    assert len(stored_name(name).encode()) <= STORED_NAME_BYTES


def test_evidence_with_a_long_name_is_kept_under_its_full_name(client, roles):
    case = CaseFactory(actors=roles, state="step_2")
    data = step_post(case, 2)
    name = "Kündigung " + "日" * 100 + ".pdf"
    data["evidence"] = SimpleUploadedFile(name, b"%PDF-1.4", "application/pdf")
    client.force_login(roles["cam"])
    response = client.post(reverse("complete_step", args=[case.pk, 2]), data)
    assert response.status_code == 302
    evidence = EvidenceFile.objects.get(event__case=case)
    assert evidence.original_name == name
    assert len(evidence.file.name.rsplit("/", 1)[1].encode()) <= STORED_NAME_BYTES
    assert evidence.file.name.endswith(".pdf")


def test_the_admin_shows_evidence_without_a_save_button_and_refuses_a_save(
    client, roles, superuser
):
    case = CaseFactory(actors=roles, state="step_2")
    client.force_login(roles["cam"])
    client.post(reverse("complete_step", args=[case.pk, 2]), step_post(case, 2))
    evidence = EvidenceFile.objects.get(event__case=case)
    url = reverse("admin:offboarding_evidencefile_change", args=[evidence.pk])
    client.force_login(superuser)
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(url, {"_save": "Save"}).status_code == 403
    assert EvidenceFile.objects.get(pk=evidence.pk).original_name == evidence.original_name


@pytest.mark.parametrize("selected", [["abc"], [HUGE], ["1", "²"]])
def test_an_admin_action_on_a_selection_that_is_not_ids_is_a_400(
    client, roles, superuser, selected
):
    client.force_login(superuser)
    url = reverse("admin:auth_group_changelist")
    response = client.post(url, {"action": "delete_selected", "_selected_action": selected})
    assert response.status_code == 400
    assert "not a row id" in response.content.decode()
    chosen = [str(roles["cam"].groups.get().pk)]
    asked = client.post(url, {"action": "delete_selected", "_selected_action": chosen})
    assert asked.status_code == 200 and b"<title>Delete multiple objects" in asked.content
    assert roles["cam"].groups.exists()
