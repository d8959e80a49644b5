"""HTTP helpers shared by the apps' views."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

from django.contrib import messages
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that has passed through django-htmx's middleware (for typing)."""

    htmx: HtmxDetails


# htmx stops polling an element that answers with this status.
HTMX_STOP_POLLING = 286

# The engine of the storyboard's cards (templates/jinja2/, its NAME in settings.TEMPLATES).
# Every render of a card passes using=JINJA, so the call says which engine runs it; a
# render without `using` is of a Django template.
JINJA = "jinja2"


def render_fragment(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    status: int = 200,
    using: str | None = None,
) -> HttpResponse:
    """An htmx fragment (a card with using=JINJA), followed by the pending messages as an
    out-of-band swap of the page's message area (so "Scene saved." shows now, not on the
    next full page)."""
    body = render_to_string(template, context, request, using=using)
    body += render_to_string("includes/messages.html", {"oob": True}, request)
    return HttpResponse(body, status=status)


_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


class _RangeNotSatisfiable(Exception):
    pass


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, or None when there is none to honour."""
    match = _SINGLE_RANGE.match(header.strip())
    if not match or not any(match.groups()):
        return None  # absent, malformed or multi-range: the whole file is a valid answer
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # a suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if not start <= end < size:
        raise _RangeNotSatisfiable
    return start, end


def _read_span(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _signed_url(stored: FieldFile, *, content_type: str, filename: str) -> str:
    """The remote storage's signed URL; on S3 it also carries the type and the file name the
    local answer gives (a download is named for its episode, not for its storage key)."""
    parameters = {"ResponseContentType": content_type}
    if filename:
        parameters["ResponseContentDisposition"] = content_disposition_header(False, filename)
    try:
        return stored.storage.url(stored.name, parameters=parameters)
    except TypeError:  # a remote storage whose url() takes no parameters
        return stored.url


def serve_stored_file(
    request: HttpRequest, stored: FieldFile, *, content_type: str, filename: str = ""
) -> HttpResponse:
    """Stream a private stored file to a caller whose access was already checked.

    Local storage streams the file through Django and honours a single byte
    range (players seek with them); remote storage (S3) answers with a redirect
    to a short-lived signed URL, which handles ranges itself.
    """
    try:
        stored.storage.path(stored.name)
    except NotImplementedError:
        redirect = HttpResponseRedirect(
            _signed_url(stored, content_type=content_type, filename=filename)
        )
        # The address is a credential that expires: never kept by a browser or a proxy.
        redirect["Cache-Control"] = "private, no-store"
        return redirect
    size = stored.size
    try:
        span = _byte_range(request.headers.get("Range", ""), size)
    except _RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if span:
        start, end = span
        response = StreamingHttpResponse(
            _read_span(stored.open("rb"), start, end - start + 1),
            status=206,
            content_type=content_type,
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(stored.open("rb"), content_type=content_type, filename=filename)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def confirm_delete(
    request: HttpRequest,
    *,
    membership: object,
    target: object,
    delete: Callable[[], object],
    done: str,
    message: str,
    cancel_url: str,
    consequence: str = "",
) -> HttpResponse:
    """GET asks "Delete …?"; POST deletes through `delete`, says `message` and goes to `done`."""
    if request.method == "POST":
        delete()
        messages.success(request, message)
        return HttpResponseRedirect(done)
    context = {
        "membership": membership,
        "object": target,
        "cancel_url": cancel_url,
        "consequence": consequence,
    }
    return render(request, "studio/confirm_delete.html", context)
