"""Request checks that every view would otherwise have to repeat.

Two middlewares, so that no body is read before it should be:

- `RequestSizeLimitMiddleware`, near the top, reads headers only: a body declared larger
  than `REQUEST_MAX_BYTES` is refused with 413 before anything reads a byte of it.
- `MalformedInputMiddleware` sits after CSRF, authentication and LoginRequiredMiddleware.
  Its `__call__` reads only headers and the address (every `__call__` runs before any
  view hook, so its charset check is in place before `CsrfViewMiddleware.process_view`
  reads the form for its token); its `process_view` reads the form only once CSRF has
  accepted the request and LoginRequiredMiddleware has let it through (an anonymous POST
  reaches it only on the pages that need no login, such as the login form, and only with
  a valid CSRF token).
"""

from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpResponse, HttpResponseBadRequest
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.http import parse_header_parameters

from core.params import row_id


def _bad_request(message: str) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class RequestSizeLimitMiddleware:
    """413 for a request whose Content-Length is beyond `settings.REQUEST_MAX_BYTES`,
    answered from the headers alone: the body is never read, so a 200 MB upload costs
    nothing but its first packet. (A body sent without Content-Length, chunked, is read by
    Django as empty under WSGI, and Django's own DATA_UPLOAD_MAX_MEMORY_SIZE still bounds
    the form fields of any body.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return _bad_request(f"The Content-Length header “{declared[:40]}” is not a number.")
        if length < 0:
            return _bad_request("The Content-Length header is negative.")
        limit = settings.REQUEST_MAX_BYTES
        if length > limit:
            # Rendered without the request: the session and the user are not needed to say
            # this, and the template's context processors would ask for them.
            page = render_to_string(
                "413.html",
                {
                    "size": filesizeformat(length),
                    "limit": filesizeformat(limit),
                    "file_limit": filesizeformat(settings.EVIDENCE_MAX_BYTES),
                },
            )
            response = HttpResponse(page, status=413)
            # The client may still be sending: tell it not to reuse the connection.
            response["Connection"] = "close"
            return response
        return self.get_response(request)


def _declared_charset_problem(request) -> str:
    """Why the request's declared charset cannot be read, or "" when it can.

    Every page of ours is UTF-8 and browsers send forms in the page's encoding. Django
    keeps a charset that `codecs.lookup` knows, and then fails with a 500 where it decodes
    the form: on a codec that is not a text encoding (base64, rot13, zlib…), or one that
    cannot replace bad bytes (idna, punycode). A name no codec has (latin-9) Django ignores
    and reads as UTF-8; it is refused here too, so the sender learns its text was misread.
    UTF-8 is named as Django's own rule for URL-encoded forms names it ("utf-8", any case);
    an alias such as "utf8" Django answers with a bare 400, and it gets this message."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return ""
    _, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    charset = params.get("charset")
    if charset is None:
        return ""
    if charset.strip().lower() == "utf-8":
        return ""
    return (
        f"The request declares its body in charset “{charset[:40]}”. PartnerOps reads "
        "forms in UTF-8 only: send the form again from its page, or encode the body as "
        "UTF-8 (charset=utf-8)."
    )


def _nul_problem(where: str, values) -> str:
    for name, given in values.lists():
        if "\x00" in name or any("\x00" in value for value in given):
            shown = name.replace("\x00", "%00")
            return (
                f"The {where} holds a NUL character (%00) in “{shown}”. No field "
                "accepts one; remove it and send again."
            )
    return ""


def _not_utf8_problem(request) -> str:
    """A URL-encoded form whose bytes (or %-escapes) are not UTF-8: Django would read it as
    Latin-1 and store mojibake without a word. Multipart fields are decoded with
    replacement characters by Django's parser and are not checked here."""
    if request.content_type != "application/x-www-form-urlencoded":
        return ""
    try:
        parse_qsl(
            request.body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except UnicodeDecodeError:
        return (
            "The form's bytes are not valid UTF-8, the charset PartnerOps reads forms in: "
            "send it again from its page, or encode it as UTF-8."
        )
    except ValueError:  # too many fields: Django's own parser answers that with a 400
        return ""
    return ""


class MalformedInputMiddleware:
    """Answers 400, saying what is wrong, to values no browser sends but a hand-made
    request can, which would otherwise end as a 500 wherever they reached a query or a
    decoder, or be stored garbled:

    - a body in a charset other than UTF-8, or a URL-encoded form whose bytes are not UTF-8;
    - a NUL character (%00) in a query-string or form value: no field of ours accepts one,
      and PostgreSQL refuses it in any query (Django's forms already refuse it in the text
      they clean, not in what views read from the address);
    - an admin action's selection that is not a row id: Django's admin filters the chosen
      rows by pk, and every table here has integer pks.

    Headers and the address are checked in `__call__`; the form only in `process_view`,
    after CSRF and login (see the module's docstring).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = _declared_charset_problem(request) or _nul_problem("address", request.GET)
        if problem:
            return _bad_request(problem)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST":
            return None
        problem = _not_utf8_problem(request) or _nul_problem("form", request.POST)
        if problem:
            return _bad_request(problem)
        if not all(
            row_id(value) is not None for value in request.POST.getlist(ACTION_CHECKBOX_NAME)
        ):
            return _bad_request("The admin action's selection holds a value that is not a row id.")
        return None
