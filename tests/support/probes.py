"""What a test reads off a video it got back: length, size and codec, once it all decodes."""

from __future__ import annotations

import io

import av


def probe(data: bytes) -> tuple[float, int, int, str]:
    """The video's seconds, width, height and codec name; every frame must decode."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) > 0
        return (
            container.duration / av.time_base,
            stream.codec_context.width,
            stream.codec_context.height,
            stream.codec_context.name,
        )
