"""Generating and handling takes: a scene's takes panel, generate one or many, and each
take's actions (select, cancel, retry, delete, remix, extend, make a character)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from characters import services as characters
from characters.models import Character
from characters.selectors import character_registrations
from jobs import services as jobs
from jobs.models import JobKind, ProviderAccount
from jobs.selectors import accounts_enabled
from studio import batches, generation, services, throttles
from studio.access import episode_for, membership_for, require, scene_for, take_for
from studio.forms import DeriveForm, SceneForm, TakeCharacterForm
from studio.http import (
    HTMX_STOP_POLLING,
    JINJA,
    HtmxHttpRequest,
    render_fragment,
    serve_stored_file,
)
from studio.models import Episode, GenerationBatch, Membership, Scene, SceneFrame, Take
from studio.storyboard import card_template, storyboard_scene

QUEUED_NOTE = (
    "The job queue cannot be reached right now, so {what} will be sent as soon as it is back. "
    "It is saved and its price reserved; do not generate it again, it will not be paid twice."
)


def _queued_note(takes: list[Take]) -> str:
    """Where a take's first step could not be handed to the workers (Redis down), say that it
    waits, so nobody retries work that will happen (jobs.dispatch)."""
    waiting = [t for t in takes if getattr(t.job, "dispatch_deferred", False)]
    if not waiting:
        return ""
    what = "it" if len(takes) == 1 else ("they" if len(waiting) == len(takes) else "some")
    return " " + QUEUED_NOTE.format(what=what)


def _accounts(membership: Membership) -> list[ProviderAccount]:
    return accounts_enabled(workspace_id=membership.workspace_id)


def _preflight(scene: Scene, accounts: list[ProviderAccount]) -> dict:
    """The scene's routes: what its policy picks, and each account's price or why not."""
    routes = generation.scene_routes(scene=scene, accounts=accounts)
    options = routes.options()
    return {
        "routes": routes,
        "options": options,
        "can_generate": any(not o["problems"] for o in options),
    }


def scene_draft(episode: Episode, data: dict, *, workspace: object) -> Scene:
    """An unsaved scene of the episode with what the form holds so far (for a preflight).

    Fields the form does not accept yet fall back to the series' defaults, so the
    preflight always answers something.
    """
    series = episode.series
    form = SceneForm(data, workspace=workspace)
    form.is_valid()
    cleaned = form.cleaned_data
    return Scene(
        episode=episode,
        prompt=data.get("prompt", ""),
        duration=cleaned.get("duration") or series.default_duration,
        size=cleaned.get("size") or series.default_size,
        routing_policy=cleaned.get("routing_policy") or "",
        pinned_account=cleaned.get("pinned_account"),
    )


def preflight_context(membership: Membership, scene: Scene) -> dict:
    """Which accounts can make the scene as it stands, at what price, and which goes."""
    routes = generation.scene_routes(scene=scene, accounts=_accounts(membership))
    return {"routes": routes, "options": routes.options()}


def _next_url(request: HtmxHttpRequest, default: str) -> str:
    """Where a plain form post returns: its `next` when that is one of our pages."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return default


def _scene_context(membership: Membership, scene: Scene, **extra: object) -> dict:
    take_list = list(
        scene.takes.select_related("job__provider_account", "parent", "score").order_by(
            "-created_at"
        )
    )
    failed_form, failed_take = extra.pop("failed_form", None), extra.pop("failed_take", None)
    failed_kind = extra.pop("failed_kind", "")
    for take in take_list:
        take.capabilities = take.job.provider_account.capabilities
        # A remix, extension or character form that was refused re-renders with what was typed.
        take.failed_form = failed_form if take.pk == failed_take else None
        take.failed_kind = failed_kind if take.pk == failed_take else ""
    preflight = (
        _preflight(scene, _accounts(membership))
        if membership.can_edit
        else {"routes": None, "options": [], "can_generate": False}
    )
    frames = {frame.position: frame for frame in scene.frames.all()}
    return {
        "membership": membership,
        "scene": storyboard_scene(scene=scene),  # mentions with their pictures, for the chips
        # (position, label, the picture there or None): what the scene starts from, ends on.
        "frame_slots": [
            (position, label, frames.get(position))
            for position, label in SceneFrame.Position.choices
        ],
        "episode": scene.episode,
        "takes": take_list,
        **preflight,
        **extra,
    }


def _take_card(request: HtmxHttpRequest, membership: Membership, take: Take) -> HttpResponse:
    take.capabilities = take.job.provider_account.capabilities
    take.failed_form, take.failed_kind = None, ""
    context = {"membership": membership, "take": take, "scene": take.scene}
    response = render_fragment(request, "studio/takes/take_card.html", context)
    if take.job.is_terminal:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def scene_detail(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    return render(request, "studio/scene_detail.html", _scene_context(membership, scene))


# --- Generating ----------------------------------------------------------------


@login_required
@require_GET
def scene_preflight(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """htmx, while a scene form is edited: which providers could make the scene as typed."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    require(membership, "edit")
    scene = scene_draft(episode, request.GET.dict(), workspace=membership.workspace)
    context = {"membership": membership, **preflight_context(membership, scene)}
    return render(request, "studio/includes/preflight.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def scene_generate(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    """GET (htmx): the storyboard card's "generate" panel with each provider's price.
    POST: one take with the chosen provider account."""
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    if request.method == "GET":
        if not request.htmx:
            return redirect("scene_detail", slug, scene.pk)
        context = {
            "membership": membership,
            "scene": scene,
            **_preflight(scene, _accounts(membership)),
        }
        return render(request, "studio/storyboard/generate_panel.html", context)
    if refusal := throttles.generate(request, membership):
        return throttles.generate_refused(request, refusal)
    choice = request.POST.get("account") or ""
    account = None
    if choice != "auto":
        account = ProviderAccount.objects.filter(
            pk=int(choice) if choice.isdigit() else 0,
            workspace=membership.workspace,
            enabled=True,
        ).first()
    take = None
    if account is None and choice != "auto":
        messages.error(request, "Choose a provider to generate with.")
    else:
        try:
            take = generation.take_create(scene=scene, account=account, created_by=request.user)
        except ValidationError as error:
            for problem in error.messages:
                messages.error(request, problem)
        else:
            going = "is queued for" if _queued_note([take]) else "is on its way to"
            messages.success(
                request,
                f"Take {take.pk} of scene {scene.number} {going} "
                f"{take.job.provider_account.name} (about ${take.job.cost_estimate:.2f})."
                f"{_queued_note([take])}",
            )
    if request.htmx:
        context = {"membership": membership, "scene": storyboard_scene(scene=scene)}
        response = render_fragment(request, card_template(membership), context, using=JINJA)
        return retarget(reswap(response, "outerHTML"), f"#scene-{scene.pk}")
    anchor = f"#take-{take.pk}" if take else ""
    return redirect(_next_url(request, f"{scene.get_absolute_url()}{anchor}"))


@login_required
@require_http_methods(["GET", "POST"])
def episode_generate(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """Generate every scene that has no selected take: GET shows how many takes, at which
    provider and for how much; POST prices them all, holds the total against the budgets
    at once and hands the batch to a task (the storyboard shows its progress)."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    require(membership, "edit")
    if request.method == "POST" and (refusal := throttles.generate(request, membership)):
        return throttles.generate_refused(request, refusal)
    accounts = _accounts(membership)
    plan = batches.generate_plan(episode, accounts)
    if request.method == "POST":
        choice = request.POST.get("account") or ""
        account = next((a for a in accounts if str(a.pk) == choice), None)
        if account is None and choice != "auto":
            messages.error(request, "Choose a provider to generate with.")
        else:
            try:
                batch = batches.batch_create(
                    episode=episode, plan=plan, account=account, created_by=request.user
                )
            except ValidationError as error:
                for problem in error.messages:
                    messages.error(request, problem)
                if choice == "auto":  # as before: back to the plan to choose otherwise
                    return redirect("episode_generate", slug, episode.pk)
            else:
                where = f" at {account.name}" if account else ", each where its policy picks"
                messages.success(
                    request,
                    f"Creating {batch.total} take{pluralize(batch.total)}{where} (about "
                    f"${batch.total_estimate:.2f}, reserved now). The storyboard shows their "
                    "progress.",
                )
                return redirect(episode)
    context = {"membership": membership, "episode": episode, **plan}
    return render(request, "studio/episode_generate.html", context)


@login_required
@require_GET
def episode_batch(
    request: HtmxHttpRequest, slug: str, episode_id: int, batch_id: int
) -> HttpResponse:
    """A generate-all's progress on the storyboard: htmx polls it every 2 s until the batch
    ends, then it answers 286 (stop polling). Without JavaScript the storyboard shows the
    same box, so a reload is the fallback."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    batch = get_object_or_404(GenerationBatch, pk=batch_id, episode=episode)
    context = batch_progress_context(membership, episode, batch)
    response = render(request, "studio/storyboard/batch_progress.html", context)
    if batch.is_finished:
        response.status_code = HTMX_STOP_POLLING
        response["HX-Trigger"] = "castboard:batch-finished"
    return response


def batch_progress_context(
    membership: Membership, episode: Episode, batch: GenerationBatch | None
) -> dict:
    """What the storyboard's progress box shows of a batch (none: nothing)."""
    return {
        "membership": membership,
        "episode": episode,
        "batch": batch,
        "summary": batches.batch_summary(batch) if batch and batch.is_finished else "",
        "refusals": list(batch.refusals.values()) if batch else [],
    }


# --- One take ------------------------------------------------------------------


@login_required
@require_GET
def take_card(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """One take's card; polled by htmx while the take is in flight."""
    membership = membership_for(request.user, slug)
    return _take_card(request, membership, take_for(membership, take_id))


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


def _after_take_action(
    request: HtmxHttpRequest, membership: Membership, take: Take, *, storyboard: bool = False
) -> HttpResponse:
    """htmx: the refreshed take card (or the storyboard card's status); else back to a page."""
    if request.htmx:
        if request.POST.get("from") == "storyboard":
            scene = storyboard_scene(scene=take.scene)
            context = {"membership": membership, "scene": scene}
            response = render_fragment(request, card_template(membership), context, using=JINJA)
            return retarget(reswap(response, "outerHTML"), f"#scene-{scene.pk}")
        return _take_card(request, membership, take)
    return redirect(_next_url(request, f"{take.scene.get_absolute_url()}#take-{take.pk}"))


@login_required
@require_POST
def take_cancel(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    outcome = jobs.job_cancel(job=take.job)
    if outcome == jobs.Cancelled.ABANDONED:
        messages.warning(
            request,
            f"Take {take.pk} was abandoned: its provider cannot stop a video once it is under "
            "way, so it may still finish there and be charged. Its estimate stays counted "
            "against your budget.",
        )
    elif outcome:
        messages.success(request, f"Take {take.pk} was cancelled; nothing more is charged for it.")
    else:
        messages.error(request, f"Take {take.pk} has already finished.")
    take.job.refresh_from_db()
    return _after_take_action(request, membership, take)


@login_required
@require_POST
def take_select(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    try:
        services.take_select(take=take)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Take {take.pk} is now the scene's selected take.")
    if request.htmx and request.POST.get("from") != "storyboard":
        # Another take may have lost the selection: refresh the whole panel.
        response = render_fragment(
            request, "studio/scene_detail.html#takes", _scene_context(membership, take.scene)
        )
        return retarget(reswap(response, "outerHTML"), "#takes")
    return _after_take_action(request, membership, take)


@login_required
@require_POST
def take_retry(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """Send a failed or cancelled take's request again (same prompt, same provider)."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    if refusal := throttles.generate(request, membership):
        return throttles.generate_refused(request, refusal)
    try:
        new = generation.take_retry(take=take, created_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _after_take_action(request, membership, take)
    account = new.job.provider_account
    messages.success(
        request, f"Take {new.pk} retries take {take.pk} at {account.name}.{_queued_note([new])}"
    )
    if request.htmx and request.POST.get("from") != "storyboard":
        response = render_fragment(
            request, "studio/scene_detail.html#takes", _scene_context(membership, take.scene)
        )
        return retarget(reswap(response, "outerHTML"), "#takes")
    return _after_take_action(request, membership, new)


@login_required
@require_http_methods(["GET", "POST"])
def take_delete(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    scene = take.scene
    if request.method == "GET":
        context = {
            "membership": membership,
            "object": take,
            "cancel_url": scene.get_absolute_url(),
            "consequence": "Its video leaves the scene; what it cost stays on record.",
        }
        return render(request, "studio/confirm_delete.html", context)
    services.take_delete(take=take)
    messages.success(request, f"Take {take_id} deleted.")
    if request.htmx:
        return render_fragment(request, "studio/takes/deleted.html", {})
    return redirect(scene)


def _derive(request: HtmxHttpRequest, slug: str, take_id: int, kind: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    if refusal := throttles.generate(request, membership):
        return throttles.generate_refused(request, refusal)
    form = DeriveForm(request.POST, kind=kind, capabilities=take.job.provider_account.capabilities)
    if form.is_valid():
        try:
            new = generation.take_derive(
                parent=take,
                kind=kind,
                prompt=form.cleaned_data["prompt"],
                seconds=form.cleaned_data.get("seconds"),
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            verb = "remixes" if kind == JobKind.REMIX else "extends"
            messages.success(
                request,
                f"Take {new.pk} {verb} take {take.pk} (about ${new.job.cost_estimate:.2f})."
                f"{_queued_note([new])}",
            )
            return redirect(f"{take.scene.get_absolute_url()}#take-{new.pk}")
    for field, problems in form.errors.items():
        for problem in problems:
            messages.error(request, problem if field == "__all__" else f"{field}: {problem}")
    # The panel keeps what was typed: the form re-renders bound on the scene's page.
    context = _scene_context(
        membership, take.scene, failed_form=form, failed_take=take.pk, failed_kind=kind
    )
    return render(request, "studio/scene_detail.html", context, status=400)


@login_required
@require_POST
def take_remix(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    return _derive(request, slug, take_id, JobKind.REMIX)


@login_required
@require_POST
def take_extend(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    return _derive(request, slug, take_id, JobKind.EXTEND)


@login_required
@require_POST
def take_character(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """Make a character from a span of a finished take: the cut joins the library."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    require(membership, "edit")
    form = TakeCharacterForm(request.POST, workspace=membership.workspace)
    if form.is_valid():
        data = form.cleaned_data
        try:
            character = data.get("character") or Character(
                workspace=membership.workspace, name=data["name"], handle=data["handle"]
            )
            made = _character_from_take(request, take, character, data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            asset = made.clip
            travels = " ".join(
                status.summary
                for status in character_registrations(
                    character=asset.character, workspace=membership.workspace
                )
            )
            messages.success(
                request,
                f"@{asset.character.handle} has a new {asset.duration_seconds:.1f} s clip and "
                f"{len(made.stills)} stills from take {take.pk}. {travels}",
            )
            return redirect(asset.character.get_absolute_url())
    for problems in form.errors.values():
        for problem in problems:
            messages.error(request, problem)
    context = _scene_context(
        membership, take.scene, failed_form=form, failed_take=take.pk, failed_kind="character"
    )
    return render(request, "studio/scene_detail.html", context, status=400)


def _character_from_take(request: HtmxHttpRequest, take: Take, character: Character, data: dict):
    """Create the character when it is new, then cut the take into it (all or nothing)."""
    from django.db import transaction

    with transaction.atomic():
        if character.pk is None:
            character = characters.character_create(
                workspace=character.workspace,
                name=character.name,
                handle=character.handle,
                description=f"Made from take {take.pk} of “{take.scene}”.",
                created_by=request.user,
            )
        return generation.character_from_take(
            take=take,
            character=character,
            start=float(data["start"]),
            end=float(data["end"]),
            created_by=request.user,
        )
