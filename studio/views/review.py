"""The review board: an episode's or a character's finished takes in a grid beside the
references they were made with, one take in a large player, approved or rejected one at a
time or in bulk, by keyboard or by plain forms. What it records is the same review the
admin's take list shows and edits (studio.services.take_review)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import push_url

from characters.models import Character
from studio import services
from studio.access import character_for, episode_for, membership_for, require
from studio.http import HtmxHttpRequest, render_fragment
from studio.models import Episode, Membership, ReviewReason, Take
from studio.review import (
    DEFAULT_FILTER,
    DEFAULT_FPS,
    Board,
    character_scope,
    episode_scope,
    review_board,
    review_queue,
    take_references,
)

TEMPLATE = "studio/review/board.html"
AXES = [("face", "Face"), ("clothing", "Clothing"), ("style", "Style")]
# (key, code, label): the digit that toggles each reason on the keyboard, 1 to 8.
REASONS = [(n, code, label) for n, (code, label) in enumerate(ReviewReason.choices, start=1)]
NOT_FINISHED = "not finished, so there is nothing to review yet"

# The reviewer's own scores: whole numbers from 0 to 100, like the automatic ones; blank: none.
SCORE = {"min_value": 0, "max_value": 100, "required": False}
_CHOOSE = {"required": "Choose Approve or Reject.", "invalid_choice": "Choose Approve or Reject."}


class ReviewForm(forms.Form):
    """One take's review, or (with action "select") making it its scene's take."""

    action = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject"), ("select", "Select")],
        error_messages=_CHOOSE,
    )
    codes = forms.MultipleChoiceField(choices=ReviewReason.choices, required=False)
    notes = forms.CharField(required=False, max_length=4000, strip=True)
    score_face = forms.IntegerField(label="Face score", **SCORE)
    score_clothing = forms.IntegerField(label="Clothing score", **SCORE)
    score_style = forms.IntegerField(label="Style score", **SCORE)


class BulkReviewForm(forms.Form):
    """The same verdict on every ticked take; notes only when written (else each keeps its own)."""

    action = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], error_messages=_CHOOSE
    )
    codes = forms.MultipleChoiceField(choices=ReviewReason.choices, required=False)
    notes = forms.CharField(required=False, max_length=4000, strip=True)


@dataclass(frozen=True)
class Subject:
    """What a board reviews: an episode, or a character across the workspace's episodes."""

    title: str
    url: str
    scope: QuerySet[Take]
    episode: Episode | None = None
    character: Character | None = None


def _as_id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _board_url(subject: Subject, show: str, take: Take | None) -> str:
    query = {"show": show} | ({"take": take.pk} if take else {})
    return f"{subject.url}?{urlencode(query)}"


def _problem(form: forms.Form) -> str:
    """A refused form's errors as one plain sentence or two."""
    problems = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        problems += [f"{label}: {error}" if label else error for error in errors]
    return " ".join(problems)


def _typed(board: Board, data: dict | None = None) -> dict:
    """What the current take's form shows: what was typed when it was refused, else the
    take's review as recorded."""
    take = board.current
    if take is None:
        return {"codes": [], "notes": "", "scores": []}
    if data is not None:
        codes, notes = data.getlist("codes"), data.get("notes", "")
        values = {axis: data.get(f"score_{axis}", "") for axis, _ in AXES}
    else:
        codes, notes = take.review_codes, take.review_notes
        values = {axis: getattr(take, f"review_{axis}") for axis, _ in AXES}
    automatic = take.automatic
    scored = automatic is not None and automatic.state == automatic.State.SCORED
    return {
        "codes": codes,
        "notes": notes,
        # (axis, label, the reviewer's score as typed or stored, the automatic one or None)
        "scores": [
            (
                axis,
                label,
                "" if values[axis] is None else values[axis],
                getattr(automatic, axis) if scored else None,
            )
            for axis, label in AXES
        ],
    }


def _show(
    request: HtmxHttpRequest,
    membership: Membership,
    subject: Subject,
    board: Board,
    *,
    typed: dict | None = None,
    problem: str = "",
    bulk: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    """The board as a page, or (htmx) as the fragment that replaces #review-board."""
    current = board.current
    if current is not None:
        current.fps = current.job.result.get("fps") or DEFAULT_FPS
        current.seconds = current.job.result.get("duration")
    context = {
        "membership": membership,
        "subject": subject,
        "board": board,
        "current": current,
        "references": (
            take_references(take=current, character=subject.character) if current else []
        ),
        "typed": typed or _typed(board),
        "problem": problem,
        "bulk": bulk or {"ids": set(), "codes": [], "notes": "", "problem": ""},
        "reasons": REASONS,
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render_fragment(request, f"{TEMPLATE}#board", context, status=status)
    else:
        response = render(request, TEMPLATE, context, status=status)
    patch_vary_headers(response, ["HX-Request"])  # one URL, a page or its fragment
    return response


def _after_decision(
    request: HtmxHttpRequest, membership: Membership, subject: Subject, board: Board
) -> HttpResponse:
    """Where the board goes once a decision is saved: htmx gets the board at its new take
    (and the address to match); a plain form post is sent there."""
    url = _board_url(subject, board.show, board.current)
    if not request.htmx:
        return redirect(url)
    return push_url(_show(request, membership, subject, board), url)


def _board(request: HtmxHttpRequest, membership: Membership, subject: Subject) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    show = data.get("show", DEFAULT_FILTER)
    current_id = _as_id(data.get("take"))
    if request.method == "GET":
        board = review_board(
            scope=subject.scope,
            show=show,
            current_id=current_id,
            by_episode=subject.episode is not None,
        )
        return _show(request, membership, subject, board)
    require(membership, "review")
    if "bulk" in request.POST:
        return _decide_bulk(request, membership, subject, show=show, current_id=current_id)
    return _decide_one(request, membership, subject, show=show, take_id=current_id)


def _decide_one(
    request: HtmxHttpRequest,
    membership: Membership,
    subject: Subject,
    *,
    show: str,
    take_id: int | None,
) -> HttpResponse:
    try:
        take = subject.scope.select_related("job", "scene").get(pk=take_id)
    except Take.DoesNotExist:
        raise Http404 from None
    form = ReviewForm(request.POST)
    problem, changed = "", 0
    if not form.is_valid():
        problem = _problem(form)
    elif form.cleaned_data["action"] == "select":
        require(membership, "edit")
        try:
            services.take_select(take=take)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, f"Take {take.pk} is now the selected take of scene {take.scene.number}."
            )
    else:
        data = form.cleaned_data
        approve = data["action"] == "approve"
        try:
            changed = services.take_review(
                takes=[take],
                state=Take.Review.APPROVED if approve else Take.Review.REJECTED,
                codes=() if approve else data["codes"],
                notes=data["notes"],
                scores={axis: data[f"score_{axis}"] for axis, _ in AXES},
                reviewer=request.user,
            )
        except ValidationError as error:
            problem = " ".join(error.messages)
    board = review_board(
        scope=subject.scope, show=show, current_id=take.pk, by_episode=subject.episode is not None
    )
    if problem:
        # Refused: the same take, its form as typed, and the reason in plain words.
        typed = _typed(board, request.POST) if board.current == take else None
        return _show(request, membership, subject, board, typed=typed, problem=problem, status=422)
    if form.cleaned_data["action"] == "select":
        return _after_decision(request, membership, subject, board)
    if changed:
        take.refresh_from_db(fields=["review_state", "review_codes"])
        verdict = "approved" if take.review_state == Take.Review.APPROVED else "rejected"
        why = f": {', '.join(take.review_reason_labels)}" if take.review_codes else ""
        messages.success(request, f"Take {take.pk} {verdict}{why}.")
        board.current = board.next_awaiting(after=board.current)
    else:
        messages.error(request, f"Take {take.pk} is {NOT_FINISHED}.")
    return _after_decision(request, membership, subject, board)


def _decide_bulk(
    request: HtmxHttpRequest,
    membership: Membership,
    subject: Subject,
    *,
    show: str,
    current_id: int | None,
) -> HttpResponse:
    """Approve or reject the ticked takes: only this board's (so this workspace's); the
    unfinished among them are skipped and counted."""
    ids = [int(value) for value in request.POST.getlist("takes") if value.isdigit()]
    chosen = list(subject.scope.filter(pk__in=ids).select_related("job"))
    form = BulkReviewForm(request.POST)
    problem, changed = "", 0
    if not chosen:
        problem = "Tick the takes to approve or reject first."
    elif not form.is_valid():
        problem = _problem(form)
    else:
        data = form.cleaned_data
        approve = data["action"] == "approve"
        try:
            changed = services.take_review(
                takes=chosen,
                state=Take.Review.APPROVED if approve else Take.Review.REJECTED,
                codes=() if approve else data["codes"],
                notes=data["notes"] or None,  # blank: each take keeps its own notes
                reviewer=request.user,
            )
        except ValidationError as error:
            problem = " ".join(error.messages)
    board = review_board(
        scope=subject.scope,
        show=show,
        current_id=current_id,
        by_episode=subject.episode is not None,
    )
    if problem:
        bulk = {
            "ids": set(ids),
            "codes": request.POST.getlist("codes"),
            "notes": request.POST.get("notes", ""),
            "problem": problem,
        }
        return _show(request, membership, subject, board, bulk=bulk, status=422)
    verdict = "approved" if form.cleaned_data["action"] == "approve" else "rejected"
    message = f"{changed} take{pluralize(changed)} {verdict}."
    if skipped := len(chosen) - changed:
        message += f" {skipped} skipped: {NOT_FINISHED}."
    (messages.success if changed else messages.warning)(request, message)
    current = board.current
    if current is not None and current.review_state != Take.Review.PENDING:
        board.current = board.next_awaiting(after=current)
    return _after_decision(request, membership, subject, board)


@login_required
@require_GET
def review_index(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The workspace's review queue: episodes and characters with takes awaiting review."""
    membership = membership_for(request.user, slug)
    context = {"membership": membership, **review_queue(workspace=membership.workspace)}
    return render(request, "studio/review/index.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def review_episode(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """An episode's finished takes, scene by scene. GET: the board (htmx: its fragment);
    POST: a review of one take (`take`) or of the ticked takes (`bulk`)."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    subject = Subject(
        title=f"Episode {episode.number}: {episode.title}",
        url=reverse("review_episode", args=[slug, episode.pk]),
        scope=episode_scope(episode=episode),
        episode=episode,
    )
    return _board(request, membership, subject)


@login_required
@require_http_methods(["GET", "POST"])
def review_character(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    """The workspace's finished takes made with any version of a character (own or shared
    with the workspace), beside the references of the version each was made with."""
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id)
    subject = Subject(
        title=character.name,
        url=reverse("review_character", args=[slug, character.pk]),
        scope=character_scope(character=character, workspace=membership.workspace),
        character=character,
    )
    return _board(request, membership, subject)
