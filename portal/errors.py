"""The page for a request the portal cannot read (400), saying what was wrong in plain words.

Django answers 400 on its own, before any view, when a request is too large (more than
``DATA_UPLOAD_MAX_MEMORY_SIZE`` of form data), has too many fields or files, or its body cannot be
parsed (a broken multipart upload); its default page says only "Bad Request (400)".
"""

from __future__ import annotations

from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from linking.imports.parsing import MAX_BYTES


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        message = _(
            "What you sent is larger than the portal accepts. Shorten what you typed; an import file can be "
            "at most %(mb)d MB."
        ) % {"mb": MAX_BYTES // (1024 * 1024)}
    elif isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        message = _("What you sent has more fields or files than any form of the portal asks for.")
    elif type(exception) is BadRequest and exception.args:
        message = str(exception)  # the portal's own refusals (portal.admin_queries) say why in plain words
    else:
        message = _("The portal could not read what you sent.")
    return render(request, "400.html", {"message": message}, status=400)
