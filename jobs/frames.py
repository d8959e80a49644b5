"""A request's frames (the pictures its video starts from or ends on) as the references a
provider reads: images with the role "first_frame" or "last_frame"."""

from __future__ import annotations

from django.core.files.storage import default_storage

from jobs.providers.base import Reference
from jobs.requests import JobRequest
from jobs.signing import public_file_url


def frame_references(
    request: JobRequest, *, taken: tuple[str, ...] | None = None, with_data: bool = False
) -> tuple[Reference, ...]:
    """The request's frames as the references a provider reads (roles first/last_frame);
    with `taken`, only the positions a provider takes (the quote says why not the others)."""
    frames = []
    for frame in request.frames:
        if taken is not None and frame.position not in taken:
            continue
        data = None
        if with_data:
            with default_storage.open(frame.asset.file, "rb") as stored:
                data = stored.read()
        frames.append(
            Reference(
                kind="image",
                data=data,
                url=public_file_url(frame.asset.file),
                content_type=frame.asset.content_type,
                role=f"{frame.position}_frame",
            )
        )
    return tuple(frames)
