"""Request checks that every view would otherwise have to repeat."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpResponseBadRequest

from .params import row_id


class MalformedInputMiddleware:
    """Answers 400, saying what is wrong, to values no browser sends but a hand-made
    request can, which would otherwise end as a 500 wherever they reached a query:

    - a NUL character (%00) in a query-string or form value: no field of ours accepts one,
      and PostgreSQL refuses it in any query (Django's forms already refuse it in the text
      they clean, not in what views read from the address);
    - an admin action's selection that is not a row id: Django's admin filters the chosen
      rows by pk, and every table here has integer pks.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sources = [("address", request.GET)]
        if request.method == "POST":
            sources.append(("form", request.POST))
        for where, values in sources:
            for name, given in values.lists():
                if "\x00" in name or any("\x00" in value for value in given):
                    shown = name.replace("\x00", "%00")
                    return HttpResponseBadRequest(
                        f"The {where} holds a NUL character (%00) in “{shown}”. No field "
                        "accepts one; remove it and send again.",
                        content_type="text/plain; charset=utf-8",
                    )
        if request.method == "POST" and not all(
            row_id(value) is not None for value in request.POST.getlist(ACTION_CHECKBOX_NAME)
        ):
            return HttpResponseBadRequest(
                "The admin action's selection holds a value that is not a row id.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
