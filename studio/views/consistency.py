"""Consistency: the report of how well each provider account, and each way of sending
characters, keeps the cast recognisable (and its CSV); one take's scores in detail with its
worst frames; scoring a take again; and the workspace's drift threshold."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import models
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from jobs.models import JobState
from studio import charts
from studio.access import membership_for, require, take_for
from studio.consistency import selectors
from studio.consistency import services as consistency_services
from studio.consistency.scoring import AXES
from studio.consistency.selectors import Report, ReportFilters, ReportLine
from studio.forms import ConsistencyFilterForm, DriftThresholdForm
from studio.http import HTMX_STOP_POLLING, HtmxHttpRequest, render_fragment, serve_stored_file
from studio.models import CharacterScore, Membership, Take, TakeScore

AXIS_LABELS = {"face": "Face", "clothing": "Clothing", "style": "Style"}


# --- The report ---------------------------------------------------------------------------


def _filters(form: ConsistencyFilterForm) -> ReportFilters:
    """What the form asks for; an invalid form narrows nothing (its errors are shown)."""
    if not form.is_bound or not form.is_valid():
        return ReportFilters()
    return ReportFilters(**form.cleaned_data)


def _report_chart(report: Report) -> charts.GroupedChart | None:
    """Face, clothing, style and persistence side by side, one bar per provider and method."""
    if not report.totals:
        return None
    groups = [
        (AXIS_LABELS[axis], [line.automatic(axis) for line in report.totals], "") for axis in AXES
    ]
    groups.append(("Persistence", [line.persistence for line in report.totals], "%"))
    return charts.grouped_columns(
        "consistency-chart",
        title="Mean automatic scores and persistence by provider account and method",
        series=[line.route for line in report.totals],
        groups=groups,
        threshold=report.threshold,
        threshold_groups=len(AXES),
    )


def _report_context(
    membership: Membership, form: ConsistencyFilterForm, **extra: object
) -> dict[str, object]:
    workspace = membership.workspace
    filters = _filters(form)
    report = selectors.consistency_report(workspace=workspace, filters=filters)
    # Whether anything was ever scored: the empty page says why, and how it fills.
    anything = (
        bool(report.takes)
        or TakeScore.objects.filter(
            state=TakeScore.State.SCORED, take__scene__episode__series__workspace=workspace
        ).exists()
    )
    query = form.data.urlencode() if form.is_bound else ""
    return {
        "membership": membership,
        "form": form,
        "filters": filters,
        "report": report,
        "chart": _report_chart(report),
        "scored_anywhere": anything,
        "csv_url": reverse("consistency_report_csv", args=[workspace.slug])
        + (f"?{query}" if query else ""),
        "axes": [(axis, AXIS_LABELS[axis]) for axis in AXES],
        "threshold_form": extra.pop("threshold_form", None)
        or (DriftThresholdForm(instance=workspace) if membership.can_manage else None),
        **extra,
    }


def _filter_form(request: HtmxHttpRequest, membership: Membership) -> ConsistencyFilterForm:
    asked = any(name in request.GET for name in ConsistencyFilterForm.base_fields)
    return ConsistencyFilterForm(request.GET if asked else None, workspace=membership.workspace)


@login_required
@require_GET
def consistency_report(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Every member reads the report; htmx asks for the report part alone when filtering."""
    membership = membership_for(request.user, slug)
    context = _report_context(membership, _filter_form(request, membership))
    # A history restore after hx-push-url asks for the whole page, not the fragment.
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "studio/consistency/report.html#report", context)
    else:
        response = render(request, "studio/consistency/report.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _figure(value: object) -> str:
    """A number as the page writes it: 65.3, 65 (not 65.0), empty for none."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    return str(value)


CSV_COLUMNS = [
    "character",
    "provider_account",
    "provider",
    "method",
    "takes",
    "face",
    "clothing",
    "style",
    "reviewer_face",
    "reviewer_clothing",
    "reviewer_style",
    "persistence_percent",
    "reviewed",
    "approved",
    "approval_rate_percent",
    "cost",
    "approved_seconds",
    "cost_per_approved_second",
    "flagged",
    "flagged_percent",
]


def _csv_row(line: ReportLine) -> list[str]:
    return [
        line.character_name,
        line.account_name,
        line.account_kind,
        line.method_label,
        *(
            _figure(value)
            for value in (
                line.takes,
                line.face,
                line.clothing,
                line.style,
                line.review_face,
                line.review_clothing,
                line.review_style,
                line.persistence,
                line.reviewed,
                line.approved,
                line.approval_rate,
                line.cost,
                line.approved_seconds,
                line.cost_per_approved_second,
                line.flagged,
                line.flagged_share,
            )
        ),
    ]


@login_required
@require_GET
def consistency_report_csv(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The report's lines as CSV, narrowed as the page is: per character, then "All
    characters" per provider account and method."""
    membership = membership_for(request.user, slug)
    form = _filter_form(request, membership)
    report = selectors.consistency_report(workspace=membership.workspace, filters=_filters(form))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="consistency-{membership.workspace.slug}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for line in [*report.lines, *report.totals]:
        writer.writerow(_csv_row(line))
    return response


@login_required
@require_POST
def drift_threshold(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Owners set the score below which a take is flagged; takes scored later use it."""
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    form = DriftThresholdForm(request.POST, instance=membership.workspace)
    if not form.is_valid():
        context = _report_context(
            membership, _filter_form(request, membership), threshold_form=form
        )
        return render(request, "studio/consistency/report.html", context, status=422)
    form.save()
    messages.success(
        request,
        f"Takes scoring below {form.instance.drift_threshold} on face, clothing or style are "
        "now flagged. Takes scored before keep their flag until they are scored again.",
    )
    return redirect(reverse("consistency_report", args=[slug]) + "#threshold")


# --- One take -------------------------------------------------------------------------------


def _character_chart(character: CharacterScore, *, seconds: float, threshold: float):
    series = [
        (AXIS_LABELS[axis], [(frame[0], frame[index]) for frame in character.frames])
        for index, axis in enumerate(AXES, start=1)
    ]
    return charts.lines(
        f"drift-{character.pk}",
        title=f"Scores of {character.character.name} over the take",
        seconds=seconds,
        series=series,
        threshold=threshold,
    )


def _take_context(membership: Membership, take: Take) -> dict[str, object]:
    score = selectors.take_score_of(take)
    threshold = membership.workspace.drift_threshold
    if score is not None:
        applied = score.threshold if score.threshold is not None else threshold
        for character in score.character_list:
            last = max((frame[0] for frame in character.frames), default=0.0)
            seconds = score.video_seconds or last or 1.0
            character.chart = _character_chart(character, seconds=seconds, threshold=applied)
            character.axes = [
                (AXIS_LABELS[axis], getattr(character, axis), applied) for axis in AXES
            ]
    return {
        "membership": membership,
        "take": take,
        "scene": take.scene,
        "score": score,
        "threshold": threshold,
        "finished": take.job.state == JobState.SUCCEEDED,
    }


@login_required
@require_GET
def take_consistency(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """A take's scores per character: axes, persistence, the score over its frames, the frames
    that scored worst, and the scorer's notes. htmx polls the fragment while it is scored."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    context = _take_context(membership, take)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "studio/consistency/take.html#scores", context)
        score = context["score"]
        if score is None or score.state != TakeScore.State.PENDING:
            response.status_code = HTMX_STOP_POLLING
    else:
        response = render(request, "studio/consistency/take.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def take_consistency_frame(
    request: HtmxHttpRequest, slug: str, take_id: int, n: int
) -> HttpResponse:
    """The JPEG of one of the take's worst frames, by its number on the take's scores: only a
    name recorded there, inside the workspace's own folder, is ever read."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    name = selectors.worst_frame_name(take, n)
    if not name or not name.startswith(f"workspaces/{take.job.workspace_id}/"):
        raise Http404
    if not default_storage.exists(name):
        raise Http404
    # A FieldFile over the stored name: serve_stored_file streams it (or signs a URL on S3).
    stored = FieldFile(None, models.FileField(), name)
    return serve_stored_file(request, stored, content_type="image/jpeg")


@login_required
@require_POST
def take_score_again(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """Reviewers (and editors, owners) have a finished take scored again, e.g. after the
    threshold or a character's references changed."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "review")
    if take.job.state != JobState.SUCCEEDED:
        messages.error(request, f"Take {take.pk} has no finished video to score.")
    elif consistency_services.take_score_again(take=take):
        messages.success(request, f"Take {take.pk} is being scored again.")
    else:
        messages.info(request, f"Take {take.pk} is being scored right now.")
    if request.htmx:
        context = _take_context(membership, take)
        return render_fragment(request, "studio/consistency/take.html#scores", context)
    return redirect("take_consistency", slug, take.pk)
