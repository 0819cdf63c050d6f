"""Evidence files missing or altered: `manage.py check_evidence` reports them and exits 1, and a
download of a missing file is a page saying so (410), never a 500 (issue 15, item 8)."""

import datetime as dt
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from offboarding import services
from offboarding.case_chain import evidence_storage
from offboarding.models import EvidenceFile
from tests.factories import PartnerFactory

NOTICE = b"%PDF-1.4 the partner's notice " * 8


def _open_case(roles, files=()):
    partner = PartnerFactory(cam=roles["cam"])
    return services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data={
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "reason_detail": "",
            "request_received_on": timezone.localdate() - dt.timedelta(days=1),
            "request_channel": "internal_review",
        },
        evidence=list(files),
    )


def _check(*args):
    out = io.StringIO()
    try:
        call_command("check_evidence", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def _replace(name: str, content: bytes) -> None:
    storage = evidence_storage()
    storage.delete(name)
    assert storage.save(name, ContentFile(content)) == name


@pytest.fixture
def evidence(roles):
    case = _open_case(roles, [SimpleUploadedFile("notice.pdf", NOTICE, "application/pdf")])
    return EvidenceFile.objects.get(event__case=case)


@pytest.mark.django_db
def test_intact_evidence_passes(evidence):
    status, out = _check()
    assert status == 0, out
    assert "1 evidence file(s) checked (1 by SHA-256, 0 by size only)" in out


@pytest.mark.django_db
def test_a_missing_file_is_reported_and_exits_1(evidence):
    evidence_storage().delete(evidence.file.name)
    status, out = _check()
    assert status == 1
    assert f"evidence file {evidence.pk} (case {evidence.event.case_id}" in out
    assert "missing" in out
    assert "1 missing, 0 altered" in out


@pytest.mark.django_db
def test_a_file_altered_to_the_same_size_is_caught_by_its_digest(evidence):
    altered = bytearray(NOTICE)
    altered[10] ^= 0xFF
    _replace(evidence.file.name, bytes(altered))
    status, out = _check()
    assert status == 1
    assert "altered — SHA-256" in out
    assert "0 missing, 1 altered" in out


@pytest.mark.django_db
def test_one_case_only(roles, evidence):
    other = _open_case(roles, [SimpleUploadedFile("other.pdf", b"%PDF-1.4 x", "application/pdf")])
    evidence_storage().delete(EvidenceFile.objects.get(event__case=other).file.name)
    assert _check("--case", str(evidence.event.case_id))[0] == 0
    assert _check("--case", str(other.pk))[0] == 1


@pytest.mark.django_db
def test_evidence_without_a_recorded_digest_is_checked_by_size(roles):
    """Files of events sealed before digests were kept: their size is all there is."""
    case = _open_case(roles)
    event = case.events.order_by("pk").first()
    assert event.evidence_digests == []
    legacy = EvidenceFile.objects.create(
        event=event, file=ContentFile(b"12345678", name="old.txt"), original_name="old.txt", size=8
    )
    status, out = _check()
    assert status == 0, out
    assert "(0 by SHA-256, 1 by size only)" in out
    _replace(legacy.file.name, b"87654321")  # same size: nothing to compare it with
    assert _check()[0] == 0
    _replace(legacy.file.name, b"123456789")
    status, out = _check()
    assert status == 1
    assert "size differs — 9 bytes stored, 8 recorded" in out


@pytest.mark.django_db
def test_downloading_a_missing_file_is_a_clear_page_not_a_500(client, roles, evidence):
    client.force_login(roles["cam"])
    url = reverse("evidence_download", args=[evidence.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == NOTICE

    evidence_storage().delete(evidence.file.name)
    response = client.get(url)
    assert response.status_code == 410
    page = response.content.decode()
    assert "This evidence file is missing" in page
    assert "notice.pdf" in page
    assert "Whom to tell" in page and "partner-ops manager" in page
    assert evidence.event.evidence_digests[0]["sha256"] in page
    assert "check_evidence" in page


@pytest.mark.django_db
def test_a_missing_file_of_a_case_you_may_not_see_is_still_a_404(client, roles, evidence):
    evidence_storage().delete(evidence.file.name)
    client.force_login(roles["cam2"])
    assert client.get(reverse("evidence_download", args=[evidence.pk])).status_code == 404
