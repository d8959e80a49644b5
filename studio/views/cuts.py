"""An episode's cuts: what a cut needs and "Assemble", each cut with its player, chapters,
contact sheet, speech charges and downloads, its files, and the episode page's cut panel."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from studio import cuts, throttles
from studio.access import episode_for, membership_for, require
from studio.http import HTMX_STOP_POLLING, HtmxHttpRequest, render_fragment, serve_stored_file
from studio.models import Cut, Episode, Membership

# A cut's files by the name its address gives them: (field, content type, file extension).
CUT_FILES = {
    "video": ("video", "video/mp4", "mp4"),
    "subtitles-vtt": ("subtitles_vtt", "text/vtt; charset=utf-8", "vtt"),
    "subtitles-srt": ("subtitles_srt", "application/x-subrip; charset=utf-8", "srt"),
    "chapters": ("chapters_vtt", "text/vtt; charset=utf-8", "chapters.vtt"),
    "contact-sheet": ("contact_sheet", "image/jpeg", "jpg"),
    "otio": ("timeline_otio", "application/json", "otio"),
    "fcpxml": ("timeline_fcpxml", "application/xml", "xml"),
    "edl": ("timeline_edl", "text/plain; charset=utf-8", "edl"),
    "zip": ("package", "application/zip", "zip"),
}
# The player's text tracks: small, and served from our origin wherever they are stored.
TEXT_TRACKS = frozenset({"subtitles-vtt", "chapters"})
# What the downloads list offers, in order: (variant, label).
DOWNLOADS = [
    ("video", "Video (MP4)"),
    ("subtitles-vtt", "Subtitles (WebVTT)"),
    ("subtitles-srt", "Subtitles (SRT)"),
    ("otio", "Timeline (OpenTimelineIO)"),
    ("fcpxml", "Timeline (Final Cut Pro 7 XML)"),
    ("edl", "Edit decision list (CMX 3600)"),
    ("zip", "Everything for an editor (zip: takes, speech, cut, subtitles, timelines)"),
]


class CutOptionsForm(forms.Form):
    crossfade = forms.DecimalField(
        label="Crossfade between scenes (seconds)",
        min_value=0,
        max_value=cuts.MAX_CROSSFADE,
        max_digits=3,
        decimal_places=1,
        initial=0,
        required=False,
        help_text="0 cuts straight from one scene to the next.",
    )
    title_card = forms.BooleanField(label="Open on a title card", required=False, initial=True)
    end_card = forms.BooleanField(label="Close on an end card", required=False, initial=True)
    burn_subtitles = forms.BooleanField(
        label="Burn the subtitles into the picture",
        required=False,
        help_text="The subtitle files come with every cut; burned in, they show everywhere.",
    )

    def options(self) -> cuts.CutOptions:
        data = self.cleaned_data
        return cuts.CutOptions(
            crossfade=float(data.get("crossfade") or 0),
            title_card=data.get("title_card", False),
            end_card=data.get("end_card", False),
            burn_subtitles=data.get("burn_subtitles", False),
        )


def _cut_for(membership: Membership, episode_id: int, number: int) -> Cut:
    """A cut of an episode of the member's workspace (another team's is a 404)."""
    episode = episode_for(membership, episode_id)
    try:
        cut = episode.cuts.select_related("created_by").get(number=number)
    except Cut.DoesNotExist:
        raise Http404 from None
    cut.episode = episode
    return cut


def _cut_list(episode: Episode) -> list[Cut]:
    """Every cut of the episode, newest first, each with why it is stale (`stale`)."""
    found = list(episode.cuts.select_related("created_by").order_by("-number"))
    now = cuts.EpisodeNow(episode) if found else None
    for cut in found:
        cut.episode = episode
        cut.stale = cuts.cut_is_stale(cut, now=now) if cut.state == Cut.State.DONE else []
    return found


@login_required
@require_http_methods(["GET", "POST"])
def episode_cut(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """What a cut of the episode takes (missing selections, lines to dub and their price,
    lines without a voice), the options and "Assemble", and the episode's cuts."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    form = CutOptionsForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        require(membership, "edit")
        if refusal := throttles.generate(request, membership):
            return throttles.too_many(
                request,
                refusal,
                "That is more work than may be started in a short while; nothing was made or "
                f"charged. Try again in {refusal.wait_in_words}.",
            )
        if form.is_valid():
            try:
                cut = cuts.cut_start(episode=episode, options=form.options(), user=request.user)
            except ValidationError as error:
                for problem in error.messages:
                    messages.error(request, problem)
            else:
                messages.success(request, f"Cut {cut.number} is on its way.")
                return redirect(cut)
        status = 400
    options = form.options() if form.is_bound and form.is_valid() else cuts.CutOptions()
    context = {
        "membership": membership,
        "episode": episode,
        "form": form,
        "preflight": cuts.cut_preflight(episode, options=options),
        "cuts": _cut_list(episode),
    }
    return render(request, "studio/cuts/episode_cut.html", context, status=status)


def _progress_context(membership: Membership, cut: Cut) -> dict:
    return {
        "membership": membership,
        "episode": cut.episode,
        "cut": cut,
        "status": cuts.cut_status(cut),
        "percent": cuts.cut_percent(cut),
    }


@login_required
@require_GET
def cut_detail(request: HtmxHttpRequest, slug: str, episode_id: int, cut_number: int):
    """A cut: its progress while it is made (htmx polls the progress part), then its player
    with subtitles and chapters, the contact sheet, downloads and speech charges."""
    membership = membership_for(request.user, slug)
    cut = _cut_for(membership, episode_id, cut_number)
    context = _progress_context(membership, cut)
    if request.htmx:
        response = render_fragment(request, "studio/cuts/cut_detail.html#progress", context)
        if cut.is_finished:
            response["HX-Refresh"] = "true"  # the page shows the player (or why not)
        return response
    context |= {
        "stale": cuts.cut_is_stale(cut) if cut.state == Cut.State.DONE else [],
        "chapters": cuts.chapters_of(cut),
        "charges": cuts.cut_speech_charges(cut),
        "downloads": [
            (variant, label) for variant, label in DOWNLOADS if getattr(cut, CUT_FILES[variant][0])
        ],
        "storyboard": cut.episode.get_absolute_url(),
    }
    context["charged"] = sum(c.charged or 0 for c in context["charges"] if c.new)
    return render(request, "studio/cuts/cut_detail.html", context)


@login_required
@require_GET
def cut_file(
    request: HtmxHttpRequest, slug: str, episode_id: int, cut_number: int, variant: str
) -> HttpResponse:
    """One of a finished cut's files (the video answers byte ranges, so players seek)."""
    membership = membership_for(request.user, slug)
    cut = _cut_for(membership, episode_id, cut_number)
    if variant not in CUT_FILES:
        raise Http404
    field_name, content_type, extension = CUT_FILES[variant]
    stored = getattr(cut, field_name)
    if not stored:
        raise Http404
    episode = cut.episode
    filename = (
        f"{slugify(episode.series.title) or 'series'}-episode-{episode.number}-cut-"
        f"{cut.number}.{extension}"
    )
    if variant in TEXT_TRACKS:
        # Always from our own origin: a <track> elsewhere (a signed S3 address) needs CORS.
        with stored.open("rb") as handle:
            response = HttpResponse(handle.read(), content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
    return serve_stored_file(request, stored, content_type=content_type, filename=filename)


@login_required
@require_GET
def episode_cut_status(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """The episode page's cut panel (htmx polls it while the current cut is being made)."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    context = cut_panel_context(membership, episode)
    response = render_fragment(request, "studio/cuts/panel.html", context)
    if context["cut"] is None or context["cut"].is_finished:
        response.status_code = HTMX_STOP_POLLING
    return response


def cut_panel_context(membership: Membership, episode: Episode) -> dict:
    """What the episode page's cut panel shows: the current cut, how far it is, and why it
    is stale."""
    cut = cuts.cut_current(episode)
    context = {"membership": membership, "episode": episode, "cut": cut}
    if cut is not None:
        cut.episode = episode
        context |= {
            "status": cuts.cut_status(cut),
            "percent": cuts.cut_percent(cut),
            "stale": cuts.cut_is_stale(cut) if cut.state == Cut.State.DONE else [],
        }
    return context
