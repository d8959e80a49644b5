"""A video's dialogue in its prompt, for providers that speak as they film.

Where the provider makes sound (Capabilities.audio), the request's lines go at the end of
the prompt template, one a line, each speaker named by its `{{subject}}` placeholder so the
provider's own syntax names them (render_mentions); elsewhere the prompt goes without them
and the studio dubs the lines (speech jobs).
"""

from __future__ import annotations

from jobs.requests import JobRequest, Line

OFF_SCREEN = "A voice off screen"


def _spoken(line: Line) -> str:
    who = f"{{{{{line.subject}}}}}" if line.subject else OFF_SCREEN
    words = " ".join(line.text.split()).replace('"', "'")
    when = f" (at {line.start:g} s)" if line.start is not None else ""
    return f'{who} says: "{words}"{when}'


def prompt_template(request: JobRequest, *, speaks: bool) -> str:
    """The prompt template a provider is sent: the request's prompt, and where the provider
    `speaks`, a final paragraph with the dialogue."""
    if not speaks or not request.dialogue:
        return request.prompt
    lines = "\n".join(_spoken(line) for line in request.dialogue)
    return f"{request.prompt.rstrip()}\n\nDialogue:\n{lines}"
