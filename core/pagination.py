"""A page of ids and the number of rows in all, read by one query instead of two."""

from django.core.paginator import Page, Paginator
from django.db.models import Count, Window

from .params import LARGEST_INTEGER


def beyond_any_table(start: int, count: int) -> bool:
    """Whether rows start..start+count lie past any table's end, too far to ask the
    database for (it would refuse the OFFSET). A page number from the address can ask
    for that; no table has that many rows."""
    return start + count > LARGEST_INTEGER


def page_of_ids(queryset, number, per_page: int) -> Page:
    """What Django's `Paginator(ids, per_page).get_page(number)` gives for `queryset`'s
    primary keys, with the page's ids as a list in `object_list`.

    The total is counted by the page's own query (COUNT(*) OVER ()), while it reads the
    rows anyway: Django's paginator counts with a query of its own, which reads every
    matching row a second time (My work: a CAM's 350 partners' open cases, twice). A number
    below 1 or past the last page is shown as get_page shows it, the last page, by Django's
    own COUNT and page queries (after the page's query found no row, for one past the end,
    or without it for a page beyond any table's end).
    """
    ids = queryset.values_list("pk", flat=True)
    paginator = Paginator(ids, per_page)
    wanted = _page_number(number)
    rows = []
    start = (wanted - 1) * per_page if wanted is not None else None
    if start is not None and not beyond_any_table(start, per_page):
        rows = list(
            queryset.annotate(rows_in_all=Window(Count("*"))).values_list("pk", "rows_in_all")[
                start : start + per_page
            ]
        )
    if not rows and wanted != 1:
        page = paginator.get_page(number)  # past the last page, or below the first
        page.object_list = list(page.object_list)
        return page
    paginator.count = rows[0][1] if rows else 0  # a cached_property: this is its value
    page = paginator.page(wanted)
    page.object_list = [pk for pk, _ in rows]
    return page


def _page_number(number) -> int | None:
    """The page get_page shows for `number`, as far as it is known without the count: 1 for
    anything that is not a number, as get_page reads it; None for a number below 1, which
    get_page turns into the last page."""
    try:
        if isinstance(number, float) and not number.is_integer():
            raise ValueError(number)
        wanted = int(number)
    except (TypeError, ValueError):
        return 1
    return wanted if wanted >= 1 else None
