"""A series' cast: which version of each character its takes are made with, and moving a pin
after a preview of what changes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from characters.models import Character, CharacterVersion
from characters.selectors import (
    VersionChanges,
    character_versions,
    characters_visible_to,
    version_changes,
)
from characters.services import character_version_latest
from studio import services
from studio.access import membership_for, require, series_for
from studio.http import HtmxHttpRequest
from studio.models import Series, SeriesCharacter


@dataclass
class CastRow:
    """One character of the series: the version it is pinned to (None: not yet, so the next
    take pins the latest), its latest version, and all its versions."""

    character: Character
    pin: SeriesCharacter | None
    latest: CharacterVersion
    versions: list[CharacterVersion]

    @property
    def current(self) -> CharacterVersion:
        return self.pin.version if self.pin else self.latest

    @property
    def behind(self) -> bool:
        """Pinned to an older version than the character's latest."""
        return self.pin is not None and self.pin.version.number < self.latest.number


def _cast(series: Series) -> list[CastRow]:
    """Characters the series' scenes mention or that it is pinned to, by name."""
    visible = characters_visible_to(workspace=series.workspace)
    mentioned = visible.filter(scenes__episode__series=series)
    pinned = visible.filter(series_pins__series=series)
    characters = (mentioned | pinned).distinct().order_by("name")
    pins = {
        pin.character_id: pin
        for pin in SeriesCharacter.objects.filter(series=series).select_related(
            "version", "pinned_by"
        )
    }
    rows = []
    for character in characters:
        versions = character_versions(character=character)
        latest = versions[0] if versions else character_version_latest(character)
        rows.append(CastRow(character, pins.get(character.pk), latest, versions or [latest]))
    return rows


@login_required
@require_GET
def series_cast(request: HtmxHttpRequest, slug: str, series_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    context = {"membership": membership, "series": series, "rows": _cast(series)}
    return render(request, "studio/cast/series_cast.html", context)


def _version_for(series: Series, character_id: int, number: str | None) -> CharacterVersion:
    """A version of a character the series' workspace can use, or 404."""
    try:
        return CharacterVersion.objects.select_related("character").get(
            character__in=characters_visible_to(workspace=series.workspace),
            character_id=character_id,
            number=int(number or ""),
        )
    except (CharacterVersion.DoesNotExist, ValueError):
        raise Http404 from None


@login_required
@require_http_methods(["GET", "POST"])
def series_pin(
    request: HtmxHttpRequest, slug: str, series_id: int, character_id: int
) -> HttpResponse:
    """Preview moving the series' pin of a character to another version (GET ?version=N),
    and move it (POST version=N)."""
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    require(membership, "edit")
    data = request.POST if request.method == "POST" else request.GET
    target = _version_for(series, character_id, data.get("version"))
    pin = SeriesCharacter.objects.filter(series=series, character_id=character_id).first()
    current = pin.version if pin else character_version_latest(target.character)
    if request.method == "POST":
        try:
            services.series_pin_set(series=series, version=target, pinned_by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"{series.title} now makes {target.character.name} as {target.label}; "
                "takes made before keep the version they were made with.",
            )
        return redirect("series_cast", slug, series.pk)
    changes: VersionChanges = version_changes(old=current, new=target)
    context = {
        "membership": membership,
        "series": series,
        "character": target.character,
        "current": current,
        "target": target,
        "changes": changes,
    }
    return render(request, "studio/cast/pin_preview.html", context)
