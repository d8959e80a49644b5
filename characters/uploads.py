"""Caps uploaded files while the request body streams in, so nothing oversized is kept."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from characters.reference_checks import format_bytes

# (form field name, file name as sent, message for the person who sent it)
RejectedUpload = tuple[str, str, str]


class CappedUploadHandler(FileUploadHandler):
    """Stops storing any one file once it passes the largest reference cap.

    Whether a file is an image or a clip is only known once its content is inspected,
    so this applies the larger of the two caps; characters.reference_checks applies the exact one.
    The oversized file is skipped, the rest of the form still parses, and the reason
    is kept on ``request.rejected_uploads`` for the view to show.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.cap = 0
        if request is not None and not hasattr(request, "rejected_uploads"):
            request.rejected_uploads = []

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        # Read per file rather than at import, so settings overrides take effect.
        self.cap = max(settings.REFERENCE_IMAGE_MAX_BYTES, settings.REFERENCE_CLIP_MAX_BYTES)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.cap:
            self._record_rejection()
            # Django closes (and so discards) what later handlers stored, drains the
            # rest of this file, and carries on with the other fields.
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        # The memory or temporary-file handler after this one builds the file.
        return None

    def _record_rejection(self) -> None:
        if self.request is None:
            return
        message = (
            f"{self.file_name} is larger than {format_bytes(self.cap)}, "
            "the most a reference file may be."
        )
        rejected = getattr(self.request, "rejected_uploads", None)
        if rejected is None:
            rejected = self.request.rejected_uploads = []
        rejected.append((self.field_name, self.file_name, message))


def rejected_upload_messages(request: HttpRequest, field_name: str | None = None) -> list[str]:
    """Messages for files the upload handler refused, optionally for one form field."""
    rejected: list[RejectedUpload] = getattr(request, "rejected_uploads", [])
    return [
        message for field, _name, message in rejected if field_name is None or field == field_name
    ]
