"""Routing benchmark: a 20-scene episode with characters, while one provider goes down half way.

Every provider account of the demo, each on its own emulator over loopback HTTP, as a
studio might have them; among them:

* OpenAI: the official Videos API, $0.10 a second, saved characters;
* Gateway: an OpenAI-compatible gateway, $0.15 a second (account price), saved characters;
* Seedance: no saved characters (they travel as reference images), priced by tokens
  (about $0.083 a second at 720p);
* Relay: flat $0.12 a video with saved characters, but only 5, 10 or 15 s portrait videos,
  so it cannot make these scenes (the preflight says why);
* Kling (saved characters as elements), Veo and Gemini (references), Runway (tagged
  references, priced in credits) and fal.ai (a hosted model), from jobs.emulators.catalog.

The episode has 20 scenes of 8 s at 1280x720; 16 mention @mina (a 3 s clip and a
picture in the library), 4 mention no one. Each pass routes every scene by one policy,
through the studio's own service (studio.generation.take_create), with a real Celery
worker process, Redis and the sweep:

1. the first 10 scenes are generated and finish;
2. the provider the policy leans on goes down (every call answers 503);
3. the other 10 are generated: the first creates are refused (nothing is accepted, so
   nothing is paid) until the breaker opens, then they fall back.

It checks that every scene completes and that no take is paid twice (one charge per
job in the ledger, and as many accepted creates at the providers as takes), and
prints each pass's total cost against the same episode all on the most expensive
capable provider, and the number of fallbacks. It exits 0 whatever the figures (1 if
a take does not succeed).

    .venv/bin/python benchmarks/routing.py [--latency 2] [--policies characters,cost]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup

SCENES = 20
WITH_CHARACTERS = 16


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=2.0, help="emulated seconds per video")
    parser.add_argument("--policies", default="characters,cost", help="comma-separated")
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=240.0, help="per wave, seconds")
    return parser.parse_args(argv)


def _serve(app):
    from jobs.emulators.base import serve

    return serve(app)


def start_emulators(stack: ExitStack, latency: float) -> dict:
    from jobs.emulators.openai import OpenAIVideosEmulator
    from jobs.emulators.seedance import SeedanceEmulator
    from jobs.emulators.sora_relay import SoraRelayEmulator

    fps = _setup.EMULATOR_FPS
    running = {
        "OpenAI": _serve(OpenAIVideosEmulator(latency_seconds=latency, fps=fps, poll_after_ms=500)),
        "Gateway": _serve(
            OpenAIVideosEmulator(latency_seconds=latency, fps=fps, poll_after_ms=500)
        ),
        "Seedance": _serve(SeedanceEmulator(latency_seconds=latency, fps=fps)),
        "Relay": _serve(SoraRelayEmulator(latency_seconds=latency, fps=fps)),
    }
    # Every other provider of the demo, each on its own emulator (jobs.emulators.catalog).
    for row in _other_providers():
        running[row.account.removesuffix(" (emulator)")] = _serve(
            row.emulator_class()(latency_seconds=latency, fps=fps)
        )
    for emulator in running.values():
        stack.callback(emulator.stop)
    return running


def _other_providers():
    from jobs.emulators.catalog import EMULATORS

    return [row for row in EMULATORS if row.kind not in ("openai", "sora_relay", "seedance")]


def make_accounts(workspace, emulators: dict) -> dict:
    from jobs.models import ProviderAccount
    from jobs.services import account_save

    specs = {
        "OpenAI": ("openai", "sora-2", None),
        "Gateway": ("openai", "sora-2", Decimal("0.15")),
        "Seedance": ("seedance", "", None),
        "Relay": ("sora_relay", "", None),
    }
    for row in _other_providers():
        specs[row.account.removesuffix(" (emulator)")] = (row.kind, row.model, None)
    accounts = {}
    for name, (kind, model, price) in specs.items():
        accounts[name] = account_save(
            account=ProviderAccount(
                workspace=workspace,
                name=name,
                kind=kind,
                base_url=emulators[name].api_url,
                model=model,
                price_override=price,
                concurrency_limit=10,
            ),
            api_key="sk-benchmark-0000",
        )
    return accounts


def make_episode(workspace, *, policy: str, number: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from characters.models import Character
    from characters.services import asset_add, character_create
    from studio.models import Episode, Scene, Series
    from tests.samples import clip_bytes, image_bytes

    mina = Character.objects.filter(workspace=workspace, handle="mina").first()
    if mina is None:
        mina = character_create(workspace=workspace, name="Mina", handle="mina")
        asset_add(
            character=mina,
            upload=SimpleUploadedFile("mina.mp4", clip_bytes(seconds=3.0), "video/mp4"),
        )
        asset_add(
            character=mina,
            upload=SimpleUploadedFile(
                "mina.png", image_bytes("PNG", size=(320, 320), color=(200, 40, 40)), "image/png"
            ),
        )
    series = Series.objects.create(
        workspace=workspace, title=f"Harbour Lights ({policy})", routing_policy=policy
    )
    episode = Episode.objects.create(series=series, number=1, title=f"Pilot {number}")
    scenes = []
    for position in range(SCENES):
        who = "@mina walks" if position % 5 != 4 else "A gull glides"  # 16 with, 4 without
        scene = Scene.objects.create(
            episode=episode,
            position=position,
            title=f"Scene {position + 1}",
            prompt=f"{who} along the harbour at dusk, shot {position + 1}.",
            duration=8,
            size="1280x720",
        )
        if who.startswith("@"):
            scene.mentions.add(mina)
        scenes.append(scene)
    return scenes


def _outage(emulator, on: bool) -> None:
    httpx.post(f"{emulator.url}/_emulator/config", json={"outage": on}).raise_for_status()


def _creates(emulator) -> Counter:
    entries = httpx.get(f"{emulator.url}/_emulator/log").json()["entries"]
    return Counter(e["status"] for e in entries if e.get("op") == "create")


def _wave(scenes, *, timeout: float) -> list:
    from studio.generation import take_create

    takes = [take_create(scene=scene) for scene in scenes]
    return _setup.wait_for_jobs([t.job_id for t in takes], timeout=timeout)


def run_pass(policy: str, *, number: int, workspace, accounts, emulators, timeout: float) -> dict:
    from jobs import breaker
    from jobs.models import Job, LedgerEntry
    from studio.generation import scene_routes

    scenes = make_episode(workspace, policy=policy, number=number)
    for account in accounts.values():
        breaker.reset(account.pk)
    # The emulators keep their state (and the characters registered there) between passes.
    before = {name: _creates(emulator) for name, emulator in emulators.items()}
    # The provider this policy leans on: where the first scene with a character would go.
    leaned_on = scene_routes(scene=scenes[0]).chosen.name
    started = time.monotonic()
    first = _wave(scenes[: SCENES // 2], timeout=timeout)
    _outage(emulators[leaned_on], True)
    try:
        second = _wave(scenes[SCENES // 2 :], timeout=timeout)
    finally:
        _outage(emulators[leaned_on], False)
    elapsed = time.monotonic() - started
    jobs = [Job.objects.select_related("provider_account").get(pk=j.pk) for j in first + second]
    charges = Counter(
        LedgerEntry.objects.filter(job__in=jobs, kind="charge").values_list("job_id", flat=True)
    )
    after = {name: _creates(emulator) for name, emulator in emulators.items()}
    accepted = {name: after[name][200] - before[name][200] for name in emulators}
    refused = {name: after[name][503] - before[name][503] for name in emulators}
    made_at = Counter(job.provider_account.name for job in jobs)
    # The same episode all on the most expensive provider that can make it.
    routes = scene_routes(scene=scenes[0]).compiled
    dearest = max(
        (a for a in accounts.values() if a.pk in routes and not routes[a.pk].problems),
        key=lambda a: routes[a.pk].estimate,
    )
    all_dearest = sum(
        (scene_routes(scene=s).compiled[dearest.pk].estimate for s in scenes), start=Decimal(0)
    )
    return {
        "policy": policy,
        "number": number,
        "down": leaned_on,
        "jobs": jobs,
        "succeeded": sum(1 for j in jobs if j.state == "succeeded"),
        "total": sum((j.cost_actual or Decimal(0) for j in jobs), start=Decimal(0)),
        "all_dearest": all_dearest,
        "dearest": dearest.name,
        "fallbacks": sum(len(j.routing.get("fallbacks", [])) for j in jobs),
        "degraded": sum(1 for j in jobs if j.routing.get("degraded")),
        "paid_twice": sum(1 for count in charges.values() if count > 1),
        "charged": len(charges),
        "accepted": accepted,
        "refused": refused,
        "made_at": made_at,
        "elapsed": elapsed,
        "quotes": [
            (
                a.name,
                routes[a.pk].estimate if a.pk in routes else None,
                routes[a.pk].problems if a.pk in routes else ["not offered"],
            )
            for a in accounts.values()
        ],
    }


def report(result: dict) -> bool:
    jobs = result["jobs"]
    print(
        f"\npolicy {result['policy']!r}: {result['down']} goes down after scene {SCENES // 2} "
        f"({result['elapsed']:.1f} s in all)"
    )
    if result["number"] == 1:
        print("  what an 8 s scene with @mina costs at each account (before anything is sent):")
        for name, estimate, problems in result["quotes"]:
            said = f"${estimate:.2f}" if not problems else f"cannot: {' '.join(problems)}"
            print(f"    {name:20} {said}")
    print(f"  scenes completed        {result['succeeded']} of {len(jobs)}")
    for name, count in sorted(result["made_at"].items()):
        spent = sum(
            (j.cost_actual or Decimal(0) for j in jobs if j.provider_account.name == name),
            start=Decimal(0),
        )
        print(f"  made at {name:17} {count:2} takes, ${spent:.2f}")
    print(
        f"  fallbacks               {result['fallbacks']} "
        f"(creates refused while down, unpaid: {sum(result['refused'].values())})"
    )
    print(f"  characters as references {result['degraded']} takes")
    accepted = sum(result["accepted"].values())
    print(
        f"  paid twice              {result['paid_twice']} "
        f"({result['charged']} charges for {len(jobs)} takes; "
        f"{accepted} creates accepted by the providers)"
    )
    saving = result["all_dearest"] - result["total"]
    print(
        f"  total cost              ${result['total']:.2f} against ${result['all_dearest']:.2f} "
        f"all on {result['dearest']} (saves ${saving:.2f}, "
        f"{saving * 100 / result['all_dearest']:.0f}%)"
    )
    ok = (
        result["succeeded"] == len(jobs)
        and result["paid_twice"] == 0
        and result["charged"] == len(jobs)
        and accepted == len(jobs)
    )
    print(
        _setup.verdict(
            "every scene completes, none paid twice",
            ok,
            f"{result['succeeded']}/{len(jobs)}, {result['paid_twice']} paid twice",
        )
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bench_env = _setup.Bench("routing", worker_concurrency=args.worker_concurrency, web=True)
    with bench_env as bench, ExitStack() as stack:
        from django.conf import settings

        from studio.models import Workspace

        emulators = start_emulators(stack, args.latency)
        workspace = Workspace.objects.create(name="Benchmark studio", slug="benchmark")
        accounts = make_accounts(workspace, emulators)
        print(
            f"Castboard routing benchmark: {SCENES} scenes of 8 s ({WITH_CHARACTERS} with @mina), "
            f"accounts {', '.join(accounts)}; emulated latency {args.latency:g} s; breaker opens "
            f"after {settings.JOBS_BREAKER_FAILURES} failures; worker concurrency "
            f"{bench.worker_concurrency}; machine: {_setup.machine_load()}"
        )
        ok = True
        for number, policy in enumerate(policies, start=1):
            result = run_pass(
                policy,
                number=number,
                workspace=workspace,
                accounts=accounts,
                emulators=emulators,
                timeout=args.timeout,
            )
            ok = report(result) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
