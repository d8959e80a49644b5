"""Gzip for the pages and fragments Django renders, never for streams or media.

A storyboard's HTML was sent as it was (1 MiB at 300 scenes); gzip sends about a fifth of
it (the demo's storyboard: 17.8 KB as 3.4 KB). Static files are not this module's business:
WhiteNoise serves them already compressed (it answers before this middleware sees the
request).

Left alone, whatever the client accepts:
- streaming responses: an event stream (live progress) must reach the browser event by
  event, and Django's gzip of a stream holds bytes back until its buffer fills; the other
  streams are files (a video's byte ranges), already compressed and addressed by offsets
  that must stay the file's own;
- `text/event-stream` even when sent whole (the polling fallback's answer), and any answer
  to a range request;
- types that do not shrink (video, audio, images but SVG, archives).

What Django's GZipMiddleware does stays: the `Vary: Accept-Encoding` header, weakened ETags,
and the random bytes in the gzip header against BREACH (a page carries a CSRF token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.middleware.gzip import GZipMiddleware

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

EVENT_STREAM = "text/event-stream"
_COMPRESSIBLE_APPLICATION_TYPES = {
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-ndjson",
}


def is_compressible(content_type: str) -> bool:
    """Text that gzip shrinks: HTML, JSON, CSS, JavaScript, XML and SVG, not event streams."""
    mime = content_type.partition(";")[0].strip().lower()
    if mime == EVENT_STREAM:
        return False
    return (
        mime.startswith("text/")
        or mime in _COMPRESSIBLE_APPLICATION_TYPES
        or mime.endswith(("+json", "+xml"))
    )


class CompressionMiddleware(GZipMiddleware):
    """GZipMiddleware for whole textual responses only (see the module's docstring)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            response.streaming
            or response.status_code == 206
            or response.has_header("Content-Range")
            or not is_compressible(response.get("Content-Type", ""))
        ):
            return response
        return super().process_response(request, response)
