"""Storyboard cards rendered once per process for what they show, and reused.

Every open storyboard renders the same first slice of cards, and a card changes only when
its scene, its takes, its characters' chips or the viewer's rights do: rendering the cards
was a sixth of the web server's CPU under benchmarks/load.py. A card is kept under a key
made of everything its templates read (scene_card.html, grid_card.html and
scene_status.html): the scene's own fields, its takes as the card reads them (each a frozen
record), its mentions and dialogue, the workspace's slug and drift threshold, and whether
the viewer may edit. A change to any of them is a new key, so nothing is ever
invalidated, only aged out.

A card with a take in flight is kept without its status block, which is rendered on each
use (its progress and time estimate move every second): the rest of the card reads of its
takes only how many there are. The viewer's CSRF field is the one part that is theirs:
kept as a placeholder, put in on each use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from studio.live import STATUS_TEMPLATE

# Cards kept per process (about 3 KiB each): a few boards' worth.
KEEP = 3_000
_CSRF_PLACEHOLDER = "\x00csrf\x00"
_CSRF_STAND_IN = Markup(_CSRF_PLACEHOLDER)  # noqa: S704 - a constant, no markup in it
_STATUS_PLACEHOLDER = "\x00status\x00"
_STATUS_STAND_IN = Markup(_STATUS_PLACEHOLDER)  # noqa: S704 - a constant, no markup in it


class RenderedCards:
    """A bounded map of rendered cards, the least recently used going first."""

    def __init__(self, *, keep: int = KEEP) -> None:
        self._cards: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep

    def get(self, key: tuple) -> str | None:
        with self._lock:
            html = self._cards.get(key)
            if html is not None:
                self._cards.move_to_end(key)
            return html

    def put(self, key: tuple, html: str) -> None:
        with self._lock:
            self._cards[key] = html
            while len(self._cards) > self.keep:
                self._cards.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._cards.clear()


rendered = RenderedCards()


def card_key(template: str, membership: Any, scene: Any) -> tuple:
    """Everything the card's templates read: with a take in flight, everything but its
    status block (which the card then leaves to be rendered on each use)."""
    board = scene.board
    workspace = membership.workspace
    return (
        template,
        workspace.slug,
        workspace.drift_threshold,
        membership.can_edit,
        scene.pk,
        scene.episode_id,
        scene.position,
        scene.title,
        scene.prompt,
        scene.duration,
        scene.size,
        scene.notes,
        ("status apart", board.take_count) if board.in_flight else tuple(scene.take_list),
        tuple(
            (c.pk, c.handle, c.name, tuple(image.pk for image in c.image_list))
            for c in scene.mention_list
        ),
        tuple(scene.line_list),
    )


@pass_context
def card(context: Context, template: str, scene: Any) -> Markup:
    """The card of `scene` rendered with `template` (what `{% include %}` would give)."""
    csrf_input = str(context["csrf_input"])
    apart = scene.board.in_flight is not None
    key = card_key(template, context["membership"], scene)

    def variables(**more: Any) -> dict[str, Any]:
        return context.get_all() | {"scene": scene, "csrf_input": _CSRF_STAND_IN, **more}

    html = rendered.get(key)
    if html is None:
        shell = variables(status_apart=_STATUS_STAND_IN) if apart else variables()
        html = context.environment.get_template(template).render(shell)
        rendered.put(key, html)
    if apart:  # (the placeholder comes before any of the scene's own text)
        status = context.environment.get_template(STATUS_TEMPLATE).render(variables())
        html = html.replace(_STATUS_PLACEHOLDER, status, 1)
    return Markup(html.replace(_CSRF_PLACEHOLDER, csrf_input))  # noqa: S704 - rendered escaped
