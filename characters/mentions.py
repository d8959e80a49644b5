"""Finds the @handle mentions in a prompt."""

from __future__ import annotations

import re

# "@" not preceded by a word character, so e-mail addresses are not mentions;
# matched case-insensitively, then lowercased like stored handles.
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{2,40})(?![A-Za-z0-9_])")


def parse_mentions(prompt: str) -> list[str]:
    """Handles mentioned in `prompt`, lowercased, in first-appearance order, no repeats."""
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(prompt):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)
