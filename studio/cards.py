"""What storyboard cards show, for both template engines: links, prompts with chips, money.

The storyboard's cards are rendered by Jinja2 (templates/jinja2/, studio/project/jinja_env.py)
because a 300-scene board spent 0.8 ms a card in Django's template engine; the other
pages reach the same helpers through studio/templatetags/storyboard.py.

A CardKit serves one render: it reverses each URL once, as a pattern around a stand-in
id, and fills in each card's ids by string formatting (one reverse() per link was 40%
of the board's render time), and it builds each character's chip once however many
scenes mention it.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from decimal import Decimal

from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

from characters.mentions import MENTION_RE
from studio.models import Scene

# Stands in for a primary key in a reversed URL, which is then cut around it.
_ID = 987_654_321_012_345
ID = None  # marks where an id goes in a pattern's arguments


@functools.lru_cache(maxsize=1024)
def _url_parts(name: str, args: tuple, script_prefix: str, urlconf: str | None) -> tuple[str, ...]:
    """The reversed URL, HTML-escaped, cut where each id goes."""
    url = reverse(name, args=[_ID if arg is ID else arg for arg in args], urlconf=urlconf)
    parts = tuple(html.escape(part) for part in url.split(str(_ID)))
    if len(parts) != args.count(ID) + 1:  # the stand-in also showed up elsewhere
        raise ValueError(f"Cannot make a URL pattern of {url}")
    return parts


class UrlPattern:
    """One URL name with its fixed arguments; called with the ids, it gives the URL (safe)."""

    __slots__ = ("_args", "_name", "_parts")

    def __init__(self, name: str, *args: object) -> None:
        self._name, self._args = name, args
        try:
            self._parts: tuple[str, ...] | None = _url_parts(
                name, args, get_script_prefix(), get_urlconf()
            )
        except ValueError:
            self._parts = None

    def __call__(self, *ids: int) -> SafeString:
        parts = self._parts
        if parts is None:
            values = iter(ids)
            args = [next(values) if arg is ID else arg for arg in self._args]
            return mark_safe(html.escape(reverse(self._name, args=args)))  # noqa: S308
        if len(ids) == 1:
            return SafeString(f"{parts[0]}{ids[0]}{parts[1]}")
        pieces = [parts[0]]
        for pk, part in zip(ids, parts[1:], strict=True):
            pieces += [str(pk), part]
        return SafeString("".join(pieces))


def url_for(name: str, *args: object) -> SafeString:
    """reverse(name, args=args) for templates, ids (ints) filled into a cached pattern."""
    ids = [arg for arg in args if isinstance(arg, int)]
    shape = [ID if isinstance(arg, int) else str(arg) for arg in args]
    return UrlPattern(name, *shape)(*ids)


@dataclass(frozen=True, slots=True)
class CardLinks:
    """Every URL a storyboard card and its status block link to, escaped and safe."""

    detail: str
    card: str
    status: str
    edit: str
    generate: str
    move: str
    duplicate: str
    delete: str
    add_after: str
    on_board: str
    picture: str  # the pictured take's thumbnail, or ""
    retry: str  # retrying the latest take, or ""


class CardKit:
    """Links and prompt chips for the cards of one workspace, for one render."""

    _SCENE_URLS = (
        "scene_detail",
        "scene_card",
        "scene_status",
        "scene_edit",
        "scene_generate",
        "scene_move",
        "scene_duplicate",
        "scene_delete",
    )

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self._scene = {name: UrlPattern(name, slug, ID) for name in self._SCENE_URLS}
        self._scene_create = UrlPattern("scene_create", slug, ID)
        self._episode = UrlPattern("episode_detail", slug, ID)
        self._thumbnail = UrlPattern("take_media", slug, ID, "thumbnail")
        self._retry = UrlPattern("take_retry", slug, ID)
        self._character = UrlPattern("character_detail", slug, ID)
        self._asset_thumbnail = UrlPattern("asset_file", slug, ID, ID, "thumbnail")
        self._chips: dict[tuple[int, str], str] = {}

    def links(self, scene: Scene) -> CardLinks:
        """The card's links, built once per card (the template uses each several times)."""
        pk, board, scene_url = scene.pk, scene.board, self._scene
        return CardLinks(
            detail=scene_url["scene_detail"](pk),
            card=scene_url["scene_card"](pk),
            status=scene_url["scene_status"](pk),
            edit=scene_url["scene_edit"](pk),
            generate=scene_url["scene_generate"](pk),
            move=scene_url["scene_move"](pk),
            duplicate=scene_url["scene_duplicate"](pk),
            delete=scene_url["scene_delete"](pk),
            add_after=SafeString(f"{self._scene_create(scene.episode_id)}?after={pk}"),
            on_board=SafeString(f"{self._episode(scene.episode_id)}#scene-{pk}"),
            picture=self._thumbnail(board.pictured.pk) if board.pictured else "",
            retry=self._retry(board.latest.pk) if board.latest else "",
        )

    def prompt(self, scene: Scene) -> SafeString:
        """The prompt, escaped, with each resolved @handle shown as a chip with its thumbnail."""
        mentioned = getattr(scene, "mention_list", None)
        if mentioned is None:  # not loaded by the storyboard (an empty list is an answer)
            mentioned = scene.mentions.all()
        by_handle = {character.handle: character for character in mentioned}
        prompt, parts, last = scene.prompt, [], 0
        for match in MENTION_RE.finditer(prompt):
            character = by_handle.get(match.group(1).lower())
            if character is None:
                continue
            parts.append(html.escape(prompt[last : match.start()]))
            parts.append(self._chip(character, match.group(0)))
            last = match.end()
        parts.append(html.escape(prompt[last:]))
        return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped

    def _chip(self, character: object, text: str) -> str:
        key = (character.pk, text)
        chip = self._chips.get(key)
        if chip is None:
            images = getattr(character, "image_list", None) or []
            picture = ""
            if images:
                src = self._asset_thumbnail(character.pk, images[0].pk)
                picture = f'<img src="{src}" alt="" loading="lazy">'
            chip = (
                f'<a class="chip mention" href="{self._character(character.pk)}" '
                f'title="{html.escape(character.name)}">{picture}{html.escape(text)}</a>'
            )
            self._chips[key] = chip
        return chip


def card_links(scene: Scene, slug: str) -> CardLinks:
    """One card's links, outside a render that has a CardKit."""
    return CardKit(slug).links(scene)


def prompt_with_chips(scene: Scene, slug: str) -> SafeString:
    """One prompt with its chips, outside a render that has a CardKit."""
    return CardKit(slug).prompt(scene)


def money(value: Decimal | None) -> str:
    """$1.20; an empty string for no value."""
    if value is None:
        return ""
    return f"${value:,.2f}"


def price(value: Decimal | int | float | str | None) -> str:
    """A unit price as people write it: $0.10, $0.035, $0.0000038272, $1,200.00.

    At least two decimals, more only where the figure has them (the price book stores ten,
    which read as `0.1000000000`); an empty string for no value.
    """
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).normalize()
    exponent = amount.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${amount:,.{places}f}"


# How a unit reads after a price ("$0.10 per second"); tokens are priced by the million.
_PER = {
    "second": ("per second", 1),
    "request": ("per video", 1),
    "token": ("per million tokens", 1_000_000),
    "credit": ("per credit", 1),
    "character": ("per character created", 1),
}


def rate(value: Decimal | None, unit: str) -> str:
    """A price per unit in words: "$0.10 per second", "$3.8272 per million tokens"."""
    if value is None:
        return ""
    words, scale = _PER.get(unit, (f"per {unit}", 1))
    return f"{price(Decimal(str(value)) * scale)} {words}"
