"""A scene's page: generate takes, watch them progress, play, select, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs import services as jobs
from jobs.models import ProviderAccount
from studio import generation
from studio.access import membership_for, require, scene_for, take_for
from studio.http import HtmxHttpRequest, serve_stored_file
from studio.models import Membership, Scene, Take

# htmx stops polling an element that answers with this status.
HTMX_STOP_POLLING = 286


def _preflight(scene: Scene, accounts: list[ProviderAccount]) -> list[dict]:
    """For each account: the estimated price, or why it cannot make this scene."""
    options = []
    for account in accounts:
        try:
            compiled = generation.scene_compile(scene=scene, account=account)
        except ValidationError as error:
            options.append({"account": account, "problems": error.messages, "estimate": None})
        else:
            options.append(
                {"account": account, "problems": compiled.problems, "estimate": compiled.estimate}
            )
    return options


def _scene_context(membership: Membership, scene: Scene, **extra: object) -> dict:
    accounts = list(
        ProviderAccount.objects.filter(workspace=membership.workspace, enabled=True).order_by(
            "name"
        )
    )
    takes = scene.takes.select_related("job__provider_account").order_by("-created_at")
    return {
        "membership": membership,
        "scene": scene,
        "episode": scene.episode,
        "takes": takes,
        "options": _preflight(scene, accounts) if membership.can_edit else [],
        **extra,
    }


@login_required
@require_GET
def scene_detail(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    return render(request, "studio/scene_detail.html", _scene_context(membership, scene))


@login_required
@require_POST
def scene_generate(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    account = ProviderAccount.objects.filter(
        pk=request.POST.get("account") or 0, workspace=membership.workspace
    ).first()
    if account is None:
        messages.error(request, "Choose a provider to generate with.")
        return redirect("scene_detail", slug, scene.pk)
    try:
        take = generation.take_create(scene=scene, account=account, created_by=request.user)
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, problem)
        return redirect("scene_detail", slug, scene.pk)
    messages.success(
        request,
        f"Take {take.pk} is on its way to {account.name} (about ${take.job.cost_estimate:.2f}).",
    )
    return redirect(f"{scene.get_absolute_url()}#take-{take.pk}")


@login_required
@require_GET
def take_card(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """One take's card; polled by htmx while the take is in flight."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    context = {"membership": membership, "take": take, "scene": take.scene}
    response = render(request, "studio/scene_detail.html#take-card", context)
    if take.job.is_terminal:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def take_media(request: HtmxHttpRequest, slug: str, take_id: int, variant: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    stored = {
        "video": (take.job.video, "video/mp4"),
        "thumbnail": (take.job.thumbnail, "image/jpeg"),
        "spritesheet": (take.job.spritesheet, "image/jpeg"),
    }.get(variant)
    if stored is None or not stored[0]:
        raise Http404
    return serve_stored_file(request, stored[0], content_type=stored[1])


@login_required
@require_POST
def take_cancel(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    if jobs.job_cancel(job=take.job):
        messages.success(request, f"Take {take.pk} was cancelled.")
    else:
        messages.error(request, f"Take {take.pk} has already finished.")
    return redirect("scene_detail", slug, take.scene.pk)


@login_required
@require_POST
def take_select(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    if take.job.state != "succeeded":
        messages.error(request, "Only a finished take can be selected.")
        return redirect("scene_detail", slug, take.scene.pk)
    with transaction.atomic():
        Take.objects.filter(scene=take.scene, is_selected=True).update(is_selected=False)
        Take.objects.filter(pk=take.pk).update(is_selected=True)
    messages.success(request, f"Take {take.pk} is now the scene's selected take.")
    return redirect("scene_detail", slug, take.scene.pk)
