"""Generate-all in batches: the plan of an episode's waiting scenes at each provider account,
a batch priced and held against the budgets at once when it is asked for, and the task's work
of making its takes one by one (each reserved out of the batch's hold, never twice)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from jobs import engine
from jobs.compiled import Compiled
from jobs.dispatch import BROKER_ERRORS
from jobs.models import TERMINAL_STATES, ProviderAccount
from studio import generation
from studio.models import Episode, GenerationBatch, Scene, Take, series_scope

log = logging.getLogger(__name__)

# A running batch whose task has made no progress for this long lost its worker: the sweep
# (or a redelivery of its message) takes it over and goes on where it stopped.
LEASE = timedelta(minutes=2)
# A queued batch whose message was lost (the broker was away) is sent again after this.
QUEUED_GRACE = timedelta(seconds=30)
# How long the storyboard keeps showing a finished batch's summary.
SHOWN_AFTER_FINISH = timedelta(minutes=15)
State = GenerationBatch.State
UNDER_WAY = (
    "A generate-all of this episode is still creating takes; wait for it to finish (the "
    "storyboard shows how far it is), then generate what is still missing."
)


# --- Reading: the episode's waiting scenes and what generating them would cost -------------


def episode_scenes(episode: Episode, *, scene_ids: list[int] | None = None) -> list[Scene]:
    """The episode's scenes in order, each with `has_selected` and `has_in_flight` (a take
    whose job has not ended), in one query."""
    takes = Take.objects.filter(scene=OuterRef("pk"))
    scenes = (
        Scene.objects.filter(episode=episode)
        .select_related("pinned_account")
        .annotate(
            has_selected=Exists(takes.filter(is_selected=True)),
            has_in_flight=Exists(takes.exclude(job__state__in=TERMINAL_STATES)),
        )
        .order_by("position", "pk")
    )
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=scene_ids)
    found = list(scenes)
    for scene in found:
        scene.episode = episode  # one episode (and series) for all: no query per scene
    return found


def generate_plan(episode: Episode, accounts: list[ProviderAccount]) -> dict:
    """Scenes without a selected take (and nothing in flight), routed by their policies and
    priced at each account, in a constant number of queries (generation.scenes_routes)."""
    scenes = episode_scenes(episode)
    waiting = [s for s in scenes if not s.has_selected and not s.has_in_flight]
    routes = generation.scenes_routes(waiting, series=episode.series, accounts=accounts)
    plans = []
    for account in accounts:
        if account.capabilities.output != engine.makes(None):  # speech: not for scenes
            continue
        ready, blocked = [], []
        for scene in waiting:
            compiled = routes[scene.pk].compiled[account.pk]
            if compiled.problems:
                blocked.append({"scene": scene, "problems": compiled.problems})
            else:
                ready.append({"scene": scene, "estimate": compiled.estimate})
        plans.append(
            {
                "account": account,
                "ready": ready,
                "blocked": blocked,
                "total": sum((r["estimate"] for r in ready), start=Decimal(0)),
            }
        )
    auto_ready, auto_blocked, by_account = [], [], {}
    for scene in waiting:
        chosen = routes[scene.pk].chosen
        if chosen is None:
            reasons = [why for _, why in routes[scene.pk].ranking.excluded]
            auto_blocked.append({"scene": scene, "problems": reasons[:1] or ["No provider."]})
            continue
        estimate = routes[scene.pk].compiled[chosen.pk].estimate
        auto_ready.append({"scene": scene, "estimate": estimate, "account": chosen})
        count, total = by_account.get(chosen.name, (0, Decimal(0)))
        by_account[chosen.name] = (count + 1, total + estimate)
    auto = {
        "ready": auto_ready,
        "blocked": auto_blocked,
        "total": sum((r["estimate"] for r in auto_ready), start=Decimal(0)),
        "by_account": [
            {"name": name, "count": count, "total": total}
            for name, (count, total) in sorted(by_account.items())
        ],
    }
    return {
        "scenes": scenes,
        "waiting": waiting,
        "busy": [s for s in scenes if s.has_in_flight],
        "plans": plans,
        "auto": auto,
        "under_way": batch_under_way(episode),
    }


def batch_under_way(episode: Episode) -> GenerationBatch | None:
    """The episode's generate-all still making takes, if any (one at a time: two would make
    takes for the same scenes)."""
    return (
        GenerationBatch.objects.filter(episode=episode, state__in=(State.QUEUED, State.RUNNING))
        .order_by("-created_at", "-pk")
        .first()
    )


# --- Asking: price, hold, hand over to the task ----------------------------------------------


def batch_create(
    *,
    episode: Episode,
    plan: dict,
    account: ProviderAccount | None,
    created_by: AbstractBaseUser | None = None,
) -> GenerationBatch:
    """A batch of the plan's ready scenes (at `account`, or each where its policy picks when
    None), its whole estimate held against the workspace's and the series' budgets in the
    same transaction; its task is sent when that commits.

    Raises ValidationError in plain words, creating nothing, when no scene can go or the
    budgets have no room for the whole batch."""
    if account is None:
        ready = plan["auto"]["ready"]
        if not ready:
            raise ValidationError("No scene can be generated automatically as it stands.")
    else:
        chosen = next((p for p in plan["plans"] if p["account"].pk == account.pk), None)
        ready = chosen["ready"] if chosen else []
        if not ready:
            raise ValidationError(f"No scene can go to {account.name} as it stands.")
    total = sum((entry["estimate"] for entry in ready), start=Decimal(0))
    try:
        with transaction.atomic():
            # Two requests at once: the second waits here, then finds the first's batch.
            Episode.objects.select_for_update().filter(pk=episode.pk).first()
            if batch_under_way(episode) is not None:
                raise ValidationError(UNDER_WAY)
            batch = GenerationBatch.objects.create(
                episode=episode,
                created_by=created_by,
                account=account,
                automatic=account is None,
                scene_ids=[entry["scene"].pk for entry in ready],
                total_estimate=total,
            )
            engine.hold(
                workspace_id=episode.series.workspace_id,
                key=batch.hold_key,
                amount=total,
                scope=series_scope(episode.series_id),
                note=f"generate-all of {len(ready)} scene{pluralize(len(ready))}",
            )
    except engine.OverBudget as over:
        raise ValidationError(over.message, code=generation.OVER_BUDGET) from None
    transaction.on_commit(lambda: batch_send(batch.pk))
    return batch


def batch_send(batch_id: int) -> bool:
    """Hand the batch to a worker; False when the broker is away (the sweep sends it later)."""
    from studio.tasks import run_generation_batch  # the task module imports this one

    try:
        run_generation_batch.delay(batch_id)
    except BROKER_ERRORS as error:
        log.warning("Batch %s: could not enqueue (%s); the sweep sends it later.", batch_id, error)
        return False
    return True


# --- Running: the task's work -------------------------------------------------------------


def batch_claim(*, batch_id: int, worker: str) -> bool:
    """Claim the batch for this task delivery with a conditional UPDATE: a queued batch, one
    this same delivery had (redelivered after its worker died), or one whose runner made no
    progress for LEASE. False when another runner has it, or it has finished."""
    now = timezone.now()
    claimable = (
        Q(state=State.QUEUED)
        | Q(state=State.RUNNING, claimed_by=worker)
        | Q(state=State.RUNNING, heartbeat_at__lt=now - LEASE)
    )
    return bool(
        GenerationBatch.objects.filter(claimable, pk=batch_id).update(
            state=State.RUNNING, claimed_by=worker, heartbeat_at=now
        )
    )


def batch_run(*, batch_id: int, worker: str) -> None:
    """Make the batch's takes, one per scene, each in its own transaction (so progress shows
    and a redelivered task goes on where it stopped), then release what the hold has left.
    A scene whose situation changed since the batch was asked for is skipped, saying why."""
    if not batch_claim(batch_id=batch_id, worker=worker):
        return
    batch = GenerationBatch.objects.select_related(
        "episode__series__workspace", "account", "created_by"
    ).get(pk=batch_id)
    try:
        _make_takes(batch, worker=worker)
    except _TakenOver:
        return  # another delivery has the batch now; it finishes it
    except Exception as error:
        _finish(batch, State.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    _finish(batch, State.DONE)


class _TakenOver(Exception):
    pass


def _make_takes(batch: GenerationBatch, *, worker: str) -> None:
    episode = batch.episode
    series = episode.series
    scenes = {s.pk: s for s in episode_scenes(episode, scene_ids=batch.scene_ids)}
    # What an earlier delivery of the task did already: its takes and its refusals stand.
    done = set(Take.objects.filter(batch=batch).values_list("scene_id", flat=True))
    done |= {int(pk) for pk in batch.refusals}
    todo = [scenes[pk] for pk in batch.scene_ids if pk in scenes and pk not in done]
    accounts = _accounts_of(batch)
    routes = generation.scenes_routes(
        [s for s in todo if not s.has_selected and not s.has_in_flight],
        series=series,
        accounts=accounts,
    )
    for scene_id in batch.scene_ids:
        if scene_id in done:
            continue
        scene = scenes.get(scene_id)
        if scene is None:
            _refuse(batch, scene_id, "A scene was deleted before its take was made.")
            continue
        why = _why_not(batch, scene, routes.get(scene.pk))
        if why:
            _refuse(batch, scene_id, f"Scene {scene.number}: {why}")
            continue
        try:
            with transaction.atomic():
                _still_ours(batch, worker=worker, scene_id=scene_id)
                _start(batch, scene, routes[scene.pk])
                GenerationBatch.objects.filter(pk=batch.pk).update(
                    made=F("made") + 1, heartbeat_at=timezone.now()
                )
        except _AlreadyMade:
            continue
        except ValidationError as error:
            _refuse(batch, scene_id, f"Scene {scene.number}: {' '.join(error.messages)}")


class _AlreadyMade(Exception):
    pass


def _still_ours(batch: GenerationBatch, *, worker: str, scene_id: int) -> None:
    """Inside the scene's transaction, with the batch row locked: stop if another delivery
    took the batch over, skip the scene if it has its take from this batch already."""
    claimed_by = (
        GenerationBatch.objects.select_for_update()
        .filter(pk=batch.pk)
        .values_list("claimed_by", flat=True)
        .first()
    )
    if claimed_by != worker:
        raise _TakenOver
    if Take.objects.filter(batch=batch, scene_id=scene_id).exists():
        raise _AlreadyMade


def _accounts_of(batch: GenerationBatch) -> list[ProviderAccount]:
    workspace = batch.episode.series.workspace
    accounts = ProviderAccount.objects.filter(workspace=workspace, enabled=True).order_by("name")
    if not batch.automatic:
        accounts = accounts.filter(pk=batch.account_id or 0)
    return list(accounts)


def _why_not(batch: GenerationBatch, scene: Scene, routes: generation.SceneRoutes | None) -> str:
    """Why the scene cannot go now, in plain words ("" when it can)."""
    if scene.has_selected:
        return "it has a chosen take now, so it was left alone."
    if scene.has_in_flight:
        return "it has a take on its way already, so it was left alone."
    if not batch.automatic:
        quote = routes.compiled.get(batch.account_id) if routes else None
        if quote is None:
            return "its provider account was switched off or removed."
        return " ".join(quote.problems)
    if routes is None or routes.chosen is None:
        reasons = [why for _, why in routes.ranking.excluded] if routes else []
        return " ".join(["No provider can make this scene as it stands.", *reasons[:1]])
    return ""


def _start(batch: GenerationBatch, scene: Scene, routes: generation.SceneRoutes) -> Take:
    if batch.automatic:
        quote = routes.routes.chosen
        return generation.take_start(
            scene=scene,
            quote=quote,
            policy=routes.policy,
            reason=routes.ranking.reason,
            fallbacks=routes.routes.fallbacks(),
            created_by=batch.created_by,
            batch=batch,
        )
    quote = routes.compiled[batch.account_id]
    return generation.take_start(
        scene=scene,
        quote=quote,
        policy="manual",
        reason=f"Chosen by hand: {quote.account.name} (about ${quote.estimate:.2f}).",
        created_by=batch.created_by,
        batch=batch,
    )


def _refuse(batch: GenerationBatch, scene_id: int, why: str) -> None:
    batch.refusals[str(scene_id)] = why
    GenerationBatch.objects.filter(pk=batch.pk).update(
        refusals=batch.refusals, heartbeat_at=timezone.now()
    )


def _finish(batch: GenerationBatch, state: str, *, error: str = "") -> None:
    """Release what the hold has left (estimates that were not spent: refused scenes, cheaper
    routes) and record the end, once."""
    engine.hold_release(batch.hold_key, note=f"generate-all {batch.pk} {state}")
    under_way = (State.QUEUED, State.RUNNING)
    unfinished = GenerationBatch.objects.filter(pk=batch.pk, state__in=under_way)
    unfinished.update(state=state, error=error[:2000], finished_at=timezone.now())


def batches_sweep() -> int:
    """Send again the batches whose message was lost or whose worker died (beat)."""
    now = timezone.now()
    stuck = list(
        GenerationBatch.objects.filter(
            Q(state=State.QUEUED, created_at__lt=now - QUEUED_GRACE)
            | Q(state=State.RUNNING, heartbeat_at__lt=now - LEASE)
        ).values_list("pk", flat=True)[:100]
    )
    for batch_id in stuck:
        batch_send(batch_id)
    return len(stuck)


# --- Showing: the storyboard's progress of the latest batch ----------------------------------


def batch_shown(episode: Episode) -> GenerationBatch | None:
    """The episode's batch the storyboard shows: one under way, else one that finished in
    the last SHOWN_AFTER_FINISH (its summary), in one query."""
    return _batch_shown.first(episode_id=episode.pk, since=timezone.now() - SHOWN_AFTER_FINISH)


# Every storyboard page shows it: compiled once per process (jobs.compiled).
_batch_shown = Compiled(
    lambda episode_id, since: (
        GenerationBatch.objects.filter(episode_id=episode_id)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .select_related("account")
        .order_by("-created_at", "-pk")[:1]
    )
)


def batch_summary(batch: GenerationBatch) -> str:
    """One line for a finished batch: what went and what it reserved."""
    made = batch.made
    if batch.automatic:
        where = ", each to the provider its policy picks"
    else:
        where = f" to {batch.account.name}" if batch.account else ""
    if not made:
        return "No take was made."
    return f"{made} take{pluralize(made)} on {'its' if made == 1 else 'their'} way{where}."
