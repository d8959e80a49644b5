"""What a test reads off a page the test client got: flash messages, words, fragments."""

from __future__ import annotations

import html
import re

from django.test import Client


def messages_of(response) -> list[str]:
    """The flash messages the response's page rendered (it must have been rendered)."""
    return [str(message) for message in response.context["messages"]]


def visible_text(markup: str) -> str:
    """The page's words as a reader sees them: tags dropped, whitespace collapsed."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).replace(" .", ".").strip()
    return html.unescape(words)


def is_fragment(response) -> bool:
    """An htmx fragment: markup to swap in, not a whole page."""
    return "<html" not in response.content.decode()


def logged_in(client: Client, user) -> Client:
    """The client, signed in as `user`."""
    client.force_login(user)
    return client
