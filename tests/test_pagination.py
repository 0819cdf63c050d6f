"""page_of_ids gives what Django's Paginator.get_page gives, from one query where it can."""

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.pagination import page_of_ids
from partners.models import Partner
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

NUMBERS = [None, "", "abc", "1", 1, "2", "3", "4", "9", "0", "-1", 2.0, 2.5, "2.0"]


def _django(queryset, number, per_page):
    page = Paginator(queryset.values_list("pk", flat=True), per_page).get_page(number)
    return page.number, page.paginator.count, page.paginator.num_pages, list(page.object_list)


def _ours(queryset, number, per_page):
    with CaptureQueriesContext(connection) as queries:
        page = page_of_ids(queryset, number, per_page)
        seen = (page.number, page.paginator.count, page.paginator.num_pages, page.object_list)
        # What the pagination template asks of a page costs nothing more.
        page.has_next(), page.has_previous(), page.start_index(), page.end_index()
    return seen, len(queries)


@pytest.mark.parametrize("rows", [0, 1, 7, 9])
@pytest.mark.parametrize("number", NUMBERS)
def test_the_same_page_as_djangos_get_page(rows, number):
    PartnerFactory.create_batch(rows)
    partners = Partner.objects.order_by("-display_name", "pk")

    ours, queries = _ours(partners, number, 3)

    assert ours == _django(partners, number, 3)
    assert isinstance(ours[3], list)
    last = max(1, -(-rows // 3))
    wanted = 1 if number in (None, "", "abc", 2.5, "2.0") else int(number)
    # One query reads the page and counts the rows. Below the first page get_page shows the
    # last, so Django counts and reads it (an empty page needs no read); past the last page,
    # the page's query found no row to carry the count first.
    djangos = 2 if rows else 1
    expected = 1 if 1 <= wanted <= last else (djangos if wanted < 1 else djangos + 1)
    assert queries == expected, (number, rows)


def test_a_filtered_page_counts_only_the_matching_rows():
    PartnerFactory.create_batch(5, display_name="Kept")
    PartnerFactory.create_batch(4, display_name="Other")
    kept = Partner.objects.filter(display_name="Kept").order_by("pk")

    page = page_of_ids(kept, "2", 3)

    assert (page.paginator.count, page.number, len(page.object_list)) == (5, 2, 2)
    assert page.object_list == list(kept.values_list("pk", flat=True))[3:]


def test_an_empty_queryset_is_one_empty_page_without_a_query():
    """My work for a user without a lane is Case.objects.none(): nothing to read."""
    with CaptureQueriesContext(connection) as queries:
        page = page_of_ids(Partner.objects.none(), "1", 3)
    assert (page.number, page.paginator.count, page.object_list) == (1, 0, [])
    assert len(queries) == 0
