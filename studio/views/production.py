"""Series, episodes and scenes: list, create, edit, delete, reorder."""

from __future__ import annotations

import copy
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from studio import dialogue, services
from studio.access import episode_for, membership_for, require, scene_for, series_for
from studio.cards import ID, UrlPattern
from studio.forms import EpisodeForm, SceneForm, SceneMoveForm, SeriesForm
from studio.http import (
    HTMX_STOP_POLLING,
    JINJA,
    HtmxHttpRequest,
    confirm_delete,
    render_fragment,
)
from studio.models import Episode, Membership, Scene, Workspace
from studio.selectors import episodes_of, mention_candidates, series_for_workspace
from studio.storyboard import (
    Slice,
    card_template,
    slice_size,
    storyboard_counts,
    storyboard_scene,
    storyboard_slice,
    storyboard_status,
    storyboard_timeline,
)
from studio.views.takes import preflight_context, scene_draft


def _apply(form: BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form, field by field where it names one."""
    if hasattr(error, "error_dict"):
        for field, problems in error.error_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error)


def _save_scene(form: SceneForm, workspace: Workspace, save: Callable[..., Scene]) -> Scene | None:
    """Save the scene (`save` is a scene service) and its dialogue together, or neither;
    None with every problem on the form, the prompt's and the dialogue's at once."""
    fields = dict(form.cleaned_data)
    text = fields.pop("dialogue")
    unread = None
    if text is not None:  # read first, so a refused prompt does not hide its problems
        try:
            dialogue.dialogue_parse(text=text, workspace=workspace, duration=fields["duration"])
        except ValidationError as error:
            unread = error
    try:
        with transaction.atomic():
            scene = save(**fields)
            if unread is not None:
                raise unread
            if text is not None:
                dialogue.scene_dialogue_set(scene=scene, text=text)
    except ValidationError as error:
        _apply(form, error)
        if unread is not None and error is not unread:
            _apply(form, unread)
        return None
    return scene


# --- Series -----------------------------------------------------------------


@login_required
@require_GET
def series_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for_workspace(workspace=membership.workspace)
    return render(request, "studio/series_list.html", {"membership": membership, "series": series})


@login_required
@require_http_methods(["GET", "POST"])
def series_create(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "edit")
    form = SeriesForm(request.POST or None, workspace=membership.workspace)
    if request.method == "POST" and form.is_valid():
        series = services.series_create(
            workspace=membership.workspace, created_by=request.user, **form.cleaned_data
        )
        messages.success(request, f"Series “{series.title}” created. Add its first episode.")
        return redirect(series)
    return render(request, "studio/series_form.html", {"membership": membership, "form": form})


@login_required
@require_GET
def series_detail(request: HtmxHttpRequest, slug: str, series_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    context = {
        "membership": membership,
        "series": series,
        "episodes": episodes_of(series=series),
        "episode_form": EpisodeForm(),
    }
    return render(request, "studio/series_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def series_edit(request: HtmxHttpRequest, slug: str, series_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    require(membership, "edit")
    form = SeriesForm(request.POST or None, instance=series)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Series saved.")
        return redirect(series)
    context = {"membership": membership, "form": form, "series": series}
    return render(request, "studio/series_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def series_delete(request: HtmxHttpRequest, slug: str, series_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    require(membership, "edit")
    return confirm_delete(
        request,
        membership=membership,
        target=series,
        delete=series.delete,
        done=reverse("series_list", args=[slug]),
        message=f"Series “{series.title}” deleted.",
        cancel_url=series.get_absolute_url(),
    )


# --- Episodes ---------------------------------------------------------------


@login_required
@require_POST
def episode_create(request: HtmxHttpRequest, slug: str, series_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    series = series_for(membership, series_id)
    require(membership, "edit")
    form = EpisodeForm(request.POST)
    if form.is_valid():
        try:
            episode = services.episode_create(
                series=series,
                title=form.cleaned_data["title"],
                number=form.cleaned_data["number"],
            )
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, f"Episode {episode.number} created.")
            return redirect(episode)
    context = {
        "membership": membership,
        "series": series,
        "episodes": episodes_of(series=series),
        "episode_form": form,
    }
    return render(request, "studio/series_detail.html", context, status=400)


def _number(value: str | None) -> int | None:
    """A whole number (a position, a scene's id) from a parameter; None when absent or not one."""
    return int(value) if value and value.isdigit() else None


def _window(request: HtmxHttpRequest, episode: Episode) -> Slice:
    """The slice a request asks for: the one holding scene `at` (where a redirect to
    `#scene-<id>` lands), the one before position `before`, after `after`, or the first."""
    if (at := _number(request.GET.get("at"))) is not None:
        found = Scene.objects.filter(episode=episode, pk=at).values_list("position", flat=True)
        if (position := next(iter(found), None)) is not None:
            start = position - position % slice_size()
            return storyboard_slice(episode=episode, after=start - 1 if start else None)
    if (before := _number(request.GET.get("before"))) is not None:
        return storyboard_slice(episode=episode, before=before)
    return storyboard_slice(episode=episode, after=_number(request.GET.get("after")))


def _render_scenes(
    request: HtmxHttpRequest, membership: Membership, episode: Episode, window: Slice, *, bare: bool
) -> str:
    # The cards' kind (list or grid) follows membership.storyboard_view, here and in the
    # answers to changes (_scene_list), so a move in the grid answers with grid cards.
    context = {"membership": membership, "episode": episode, "slice": window, "bare": bare}
    return render_to_string("studio/storyboard/scene_list.html", context, request, using=JINJA)


def _render_timeline(request: HtmxHttpRequest, membership: Membership, episode: Episode) -> str:
    """The timeline strip: every scene as a block as long as the scene, from one query."""
    context = {
        "membership": membership,
        "episode": episode,
        "timeline": storyboard_timeline(episode=episode),
        # Reversed once, filled in per block: a reverse() per block was most of its time.
        "thumbnail": UrlPattern("take_media", membership.workspace.slug, ID, "thumbnail"),
    }
    return render_to_string("studio/storyboard/timeline.html", context, request, using=JINJA)


def _on_board(scene: Scene) -> str:
    """The storyboard at the scene's card, whichever slice holds it."""
    return f"{scene.episode.get_absolute_url()}?at={scene.pk}#scene-{scene.pk}"


@login_required
@require_GET
def episode_detail(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """The storyboard: the header's figures from aggregate queries and one slice of cards
    (the first, or the one a link asks for); the rest loads as the list is scrolled.

    Seen as a list, a grid of pictures or a timeline strip over the list: `?view=` picks
    one and the member's choice is remembered, so their storyboards open that way."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    if request.htmx and request.GET.get("part") == "timeline":
        # The strip alone: what it fetches again after a change to the list under it.
        return HttpResponse(_render_timeline(request, membership, episode))
    membership.remember_storyboard_view(request.GET.get("view", ""))
    return _episode_page(request, membership, episode)


def _episode_page(
    request: HtmxHttpRequest, membership: Membership, episode: Episode
) -> HttpResponse:
    view = membership.storyboard_view
    timeline = ""
    if view == Membership.StoryboardView.TIMELINE:
        timeline = _render_timeline(request, membership, episode)
    context = {
        "membership": membership,
        "episode": episode,
        "view": view,
        "views": Membership.StoryboardView.choices,
        "timeline": mark_safe(timeline),  # noqa: S308 - Jinja2 escaped it (autoescape is on)
        **storyboard_counts(episode=episode),
        # The cards are rendered here (Jinja2) and the page gets only their HTML: a
        # Django template context is a reference cycle (each of its dicts points back at
        # it), so the scenes it held outlived the request until the garbage collector's
        # full pass, which then stalled a request.
        "storyboard": mark_safe(  # noqa: S308 - Jinja2 escaped it (autoescape is on)
            _render_scenes(request, membership, episode, _window(request, episode), bare=False)
        ),
    }
    return render(request, "studio/episode_detail.html", context)


@login_required
@require_GET
def episode_scenes(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """One slice of the storyboard's cards (`after` or `before` a position) with the loader
    for the next one: what a loader swaps itself for. Without htmx, the page at that slice."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    if not request.htmx:
        return _episode_page(request, membership, episode)
    window = _window(request, episode)
    return HttpResponse(_render_scenes(request, membership, episode, window, bare=True))


@login_required
@require_http_methods(["GET", "POST"])
def episode_edit(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    require(membership, "edit")
    form = EpisodeForm(request.POST or None, instance=episode)
    if request.method == "POST" and form.is_valid():
        number = form.cleaned_data["number"] or episode.number
        clash = episode.series.episodes.filter(number=number).exclude(pk=episode.pk)
        if clash.exists():
            form.add_error("number", f"Episode {number} already exists in this series.")
        else:
            episode.number, episode.title = number, form.cleaned_data["title"]
            episode.save()
            messages.success(request, "Episode saved.")
            return redirect(episode)
    context = {"membership": membership, "form": form, "episode": episode}
    return render(request, "studio/episode_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def episode_delete(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    require(membership, "edit")
    return confirm_delete(
        request,
        membership=membership,
        target=episode,
        delete=episode.delete,
        done=episode.series.get_absolute_url(),
        message=f"Episode {episode.number} deleted.",
        cancel_url=episode.get_absolute_url(),
    )


# --- Scenes ---------------------------------------------------------------
#
# Each scene view answers a plain request with a page or a redirect (the storyboard
# works without JavaScript) and an htmx request with the fragment the storyboard
# swaps: a card, the in-place form, or the cards from the first one whose number shifts.


# A change that shifts numbers answers with the cards from the first position it changed:
# one slice of them and the loader for the rest, whatever the episode's length. htmx adds
# them at the end of the list; storyboard.js first takes away the cards from that position
# on (the header says which), so the cards before it stay as they are.
SCENES_FROM = "Storyboard-From"


def _scene_list(
    request: HtmxHttpRequest,
    membership: Membership,
    episode: Episode,
    *,
    start: int,
    show: Scene | None = None,
) -> HttpResponse:
    start = max(start, 0)
    window = storyboard_slice(episode=episode, after=start - 1 if start else None)
    context = {"membership": membership, "episode": episode, "slice": window, "bare": True}
    response = render_fragment(request, "studio/storyboard/scene_list.html", context, using=JINJA)
    response[SCENES_FROM] = str(start)
    swap = f"beforeend show:#scene-{show.pk}:top" if show is not None else "beforeend"
    return retarget(reswap(response, swap), "#scene-list")


def _scene_card(request: HtmxHttpRequest, membership: Membership, scene: Scene) -> HttpResponse:
    context = {"membership": membership, "scene": storyboard_scene(scene=scene)}
    return render_fragment(request, card_template(membership), context, using=JINJA)


def _scene_form(
    request: HtmxHttpRequest,
    membership: Membership,
    episode: Episode,
    form: SceneForm,
    *,
    scene: Scene | None = None,
    after: Scene | None = None,
) -> HttpResponse:
    # What the form holds (as typed, or as saved) decides who could make the scene.
    fields = ("prompt", "duration", "size", "routing_policy", "pinned_account")
    data = form.data.dict() if form.is_bound else {f: form[f].value() or "" for f in fields}
    draft = scene_draft(episode, data, workspace=membership.workspace)
    context = {
        "membership": membership,
        "episode": episode,
        "form": form,
        "scene": scene,
        "after": after,
        **preflight_context(membership, draft),
    }
    if request.htmx:
        # Several forms can be open on one storyboard: keep their element ids apart.
        form.auto_id = f"id_{scene.pk if scene else 'new' + str(after.pk if after else '')}_%s"
        status = 422 if form.is_bound and form.errors else 200
        return render_fragment(request, "studio/storyboard/scene_form.html", context, status=status)
    return render(request, "studio/scene_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def scene_create(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    require(membership, "edit")
    series = episode.series
    after = None
    if after_id := request.GET.get("after") or request.POST.get("after"):
        after = scene_for(membership, int(after_id)) if after_id.isdigit() else None
        if after is not None and after.episode_id != episode.pk:
            after = None
    form = SceneForm(
        request.POST or None,
        initial={"duration": series.default_duration, "size": series.default_size},
        workspace=membership.workspace,
    )
    if request.method == "POST" and form.is_valid():
        scene = _save_scene(
            form,
            membership.workspace,
            lambda **fields: services.scene_create(episode=episode, after=after, **fields),
        )
        if scene is not None:
            messages.success(request, f"Scene {scene.number} added.")
            if request.htmx:
                # At the end, from the "Add scene" form over the list: show where it went.
                show = None if after is not None else scene
                return _scene_list(request, membership, episode, start=scene.position, show=show)
            return redirect(_on_board(scene))
    return _scene_form(request, membership, episode, form, after=after)


@login_required
@require_GET
def scene_card(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    """One storyboard card (what "Cancel" on the in-place form swaps back)."""
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    if not request.htmx:
        return redirect(_on_board(scene))
    return _scene_card(request, membership, scene)


@login_required
@require_GET
def scene_status(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    """The card's status block, polled while a take is in flight; 286 stops the polling."""
    membership = membership_for(request.user, slug)
    scene = storyboard_status(scene=scene_for(membership, scene_id))
    context = {"membership": membership, "scene": scene}
    response = render(request, "studio/storyboard/scene_status.html", context, using=JINJA)
    if scene.board.in_flight is None:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_http_methods(["GET", "POST"])
def scene_edit(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    # The form works on a copy (what it is sent goes onto its instance, and a refused form
    # shows the scene as saved around it); the copy keeps the episode, series and workspace
    # already read, so neither it nor the save reads them again.
    form = SceneForm(request.POST or None, instance=copy.copy(scene))
    if request.method == "POST" and form.is_valid():
        saved = _save_scene(
            form,
            membership.workspace,
            lambda **fields: services.scene_update(scene=_fresh(scene), **fields),
        )
        if saved is not None:
            messages.success(request, f"Scene {scene.number} saved.")
            if request.htmx:
                return _scene_card(request, membership, scene)
            return redirect(_on_board(scene))
    return _scene_form(request, membership, scene.episode, form, scene=scene)


def _fresh(scene: Scene) -> Scene:
    """The scene as the database has it now, with what scene_for read around it."""
    fresh = Scene.objects.get(pk=scene.pk)
    if fresh.episode_id == scene.episode_id:
        fresh.episode = scene.episode
    return fresh


@login_required
@require_http_methods(["GET", "POST"])
def scene_delete(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    episode = scene.episode
    message = f"Scene “{scene}” deleted."
    if request.htmx and request.method == "POST":
        services.scene_delete(scene=scene)
        messages.success(request, message)
        return _scene_list(request, membership, episode, start=scene.position)
    takes = scene.takes.count()
    return confirm_delete(
        request,
        membership=membership,
        target=scene,
        delete=lambda: services.scene_delete(scene=scene),
        done=episode.get_absolute_url(),
        message=message,
        cancel_url=episode.get_absolute_url(),
        consequence=f"Its {takes} take{pluralize(takes)} leave the storyboard; what they cost "
        "stays on record."
        if takes
        else "",
    )


@login_required
@require_POST
def scene_duplicate(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    try:
        copy = services.scene_duplicate(scene=scene)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        copy = None
    else:
        messages.success(request, f"Scene duplicated as scene {copy.number}.")
    if request.htmx:
        return _scene_list(request, membership, scene.episode, start=scene.position + 1)
    return redirect(_on_board(copy) if copy else scene.episode.get_absolute_url())


def _next_to(scene: Scene, data: dict) -> int | None:
    """The position that puts the scene right `after` (or `before`) another of its episode's
    scenes, from that neighbour's position now: a card dragged among the loaded ones names
    its new neighbour, since the page may not hold the whole list. None if neither is given
    (or the neighbour is not in the episode any more)."""
    for key, offset in (("after", 1), ("before", 0)):
        if (pk := _number(data.get(key))) is not None:
            found = Scene.objects.filter(episode_id=scene.episode_id, pk=pk)
            position = next(iter(found.values_list("position", flat=True)), None)
            if position is None:
                return None
            # The scene leaves its place first: a neighbour after it moves up by one.
            return position + offset - (1 if position > scene.position else 0)
    return None


@login_required
@require_POST
def scene_move(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    """Move a scene to a 0-based position, or next to another scene (`after` or `before`
    its id); htmx gets the cards from the first position that changed."""
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    was = scene.position
    if "after" in request.POST or "before" in request.POST:
        to_position = _next_to(scene, request.POST)
        if to_position is None:
            return HttpResponse("Give the neighbour as a scene of this episode.", status=400)
    else:
        form = SceneMoveForm(request.POST)
        if not form.is_valid():
            return HttpResponse("Give the new position as a whole number.", status=400)
        to_position = form.cleaned_data["position"]
    try:
        moved = services.scene_move(scene=scene, to_position=to_position)
    except Scene.DoesNotExist:
        messages.error(request, "That scene was deleted meanwhile.")
        moved = None
    else:
        if request.htmx:
            messages.success(request, f"“{moved}” is now scene {moved.number}.")
    if request.htmx:
        start = min(was, moved.position) if moved else was
        return _scene_list(request, membership, scene.episode, start=start)
    return redirect(_on_board(moved) if moved else scene.episode.get_absolute_url())


@login_required
@require_GET
def mention_suggestions(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Characters whose handle or name starts with `q`: own first, then shared ones."""
    membership = membership_for(request.user, slug)
    query = request.GET.get("q", "").strip().lstrip("@").lower()[:40]
    context = {
        "membership": membership,
        "query": query,
        "characters": mention_candidates(workspace=membership.workspace, query=query),
    }
    return render(request, "studio/storyboard/suggestions.html", context)
