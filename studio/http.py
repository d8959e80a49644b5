"""HTTP helpers shared by the apps' views."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that has passed through django-htmx's middleware (for typing)."""

    htmx: HtmxDetails


def serve_stored_file(stored: FieldFile, *, content_type: str, filename: str = "") -> HttpResponse:
    """Stream a private stored file to a caller whose access was already checked.

    Local storage streams the file through Django; remote storage (S3) answers
    with a redirect to a short-lived signed URL.
    """
    try:
        default_storage.path(stored.name)
    except NotImplementedError:
        return HttpResponseRedirect(stored.url)
    response = FileResponse(stored.open("rb"), content_type=content_type, filename=filename)
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
