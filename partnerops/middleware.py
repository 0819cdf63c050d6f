"""Request checks that every view would otherwise have to repeat."""

from django.http import HttpResponseBadRequest


class RejectNulCharactersMiddleware:
    """Answers 400, naming the field, when a query-string or form value holds a NUL
    character (%00).

    No field of ours accepts one, and PostgreSQL refuses it in any query: a NUL that reached
    a filter, a search or a lookup would end as a 500. A browser never sends one, so this
    meets only hand-made requests; Django's forms already refuse NUL in text they clean.
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
        return self.get_response(request)
