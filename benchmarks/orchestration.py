"""Orchestration benchmark: an N-scene episode through Castboard versus the classic script.

Every pass generates one take per scene at its own OpenAI Videos emulator with a fixed
latency; every scene mentions one character, so registering it is on the path:

* Castboard, polling: takes created with studio.generation.take_create, a real Celery
  worker doing submit/poll/download, the sweep running every second (as beat);
* Castboard, webhooks: the same with a webhook secret on the account and the emulator
  posting Standard Webhooks to the app's /hooks/<token>/ on a loopback HTTP server;
* baseline: a client written like the classic script: register the character, then for
  each scene create, poll every 5 s until done, download, and only then the next scene.

It prints the wall time of each, the ratio, the provider-imposed floor (latency x
ceil(N / concurrency limit)), provider requests per take (from the emulator's request
log), where the time went, the worker's peak memory, and a met / not met line per
target. It exits 0 whatever the times; only a broken run (a job not succeeding) is 1.

Then the same 20-scene passes on the Procfile's two workers (one for sends and polls, one
for downloads), and a long episode (--long-scenes, 100) at the same concurrency, with the
same breakdown each time.

    .venv/bin/python benchmarks/orchestration.py [--scenes 20] [--latency 6] \
        [--concurrency 10] [--poll-hint-ms 1000] [--long-scenes 100] [--skip-baseline] \
        [--skip-two-workers] [--dump DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup

BASELINE_POLL_SECONDS = 5.0
BASELINE_API_KEY = "sk-baseline-0000"
DEFAULT_CONCURRENCY = 10
TARGET_FLOOR_RATIO = 1.2
TARGET_WEBHOOK_FLOOR_RATIO = 1.1
TARGET_SPEEDUP = 10.0
TARGET_HANDOFF_SECONDS = 0.3


@dataclass
class PassResult:
    label: str
    scenes: int
    started: float  # epoch s
    wall: float
    entries: list[dict]
    finishes_at: dict[str, float]  # when each video completed at the provider (epoch s)
    finished_at: dict[str, float] = field(default_factory=dict)  # video -> job stored (epoch s)
    memory: _setup.MemoryWindow | None = None
    webhooks: list[dict] = field(default_factory=list)

    @property
    def per_video(self) -> dict:
        return _setup.requests_per_video(self.entries)

    @property
    def registrations(self) -> int:
        return _setup.count_ops(self.entries, "character")

    def totals(self) -> list[int]:
        return [sum(counts.values()) for counts in self.per_video.values()]

    def retrieves_before_completion(self) -> int:
        return sum(
            1
            for entry in self.entries
            if entry["op"] == "retrieve"
            and entry["time"] < self.finishes_at.get(_setup.video_id_of(entry) or "", 0)
        )


# --- Arguments ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=20, help="scenes in the episode (20)")
    parser.add_argument("--latency", type=float, default=6.0, help="provider latency, s (6)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"the account's concurrency limit ({DEFAULT_CONCURRENCY}: two waves of 20 scenes)",
    )
    parser.add_argument(
        "--poll-hint-ms",
        type=int,
        default=1000,
        help="the emulator's openai-poll-after-ms hint (1000)",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="Celery prefork processes (4)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="skip the slow baseline")
    parser.add_argument(
        "--long-scenes",
        type=int,
        default=100,
        help="scenes in the long episode, polling and webhooks (100; 0 skips it)",
    )
    parser.add_argument(
        "--render-each",
        action="store_true",
        help="the emulator encodes every video on this machine's CPUs, during the passes "
        "(default: one clip per shape, reused, as a provider renders elsewhere)",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL database to (re)create and run on, e.g. "
        "postgres://postgres@127.0.0.1:5432/castboard_bench (default: a fresh SQLite file)",
    )
    parser.add_argument(
        "--skip-two-workers",
        action="store_true",
        help="skip the passes on the Procfile's two workers (sends + downloads)",
    )
    parser.add_argument(
        "--dump", type=Path, help="write each pass's request log and timelines as JSON here"
    )
    return parser.parse_args(argv)


def floor_seconds(args: argparse.Namespace, scenes: int | None = None) -> float:
    return args.latency * math.ceil((scenes or args.scenes) / args.concurrency)


def emulator_config(args: argparse.Namespace) -> dict:
    return {
        "latency_seconds": args.latency,
        "poll_after_ms": args.poll_hint_ms,
        "reuse_renders": not args.render_each,
    }


# --- Castboard ----------------------------------------------------------------------------------


def enable_webhooks(account, running_emulator, public_url: str) -> None:
    """A webhook secret on the account, and the emulator posting to its /hooks/<token>/."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    account.set_webhook_secret(secret)
    account.save()
    response = httpx.post(
        f"{running_emulator.url}/_emulator/config",
        json={
            "webhook_url": f"{public_url}/hooks/{account.webhook_token}/",
            "webhook_secret": secret,
        },
    )
    response.raise_for_status()


def run_castboard(bench, studio, args, *, webhooks: bool, layout: str = "") -> PassResult:
    from studio.generation import take_create, takes_create

    label = "Castboard, webhooks" if webhooks else "Castboard, polling"
    if len(studio.scenes) != args.scenes:
        label += f", {len(studio.scenes)} scenes"
    if layout:
        label += f", {layout}"
    floor = floor_seconds(args, len(studio.scenes))
    with _setup.emulator(**emulator_config(args)) as running:
        account = _setup.make_account(studio, running, name=label, concurrency=args.concurrency)
        if webhooks:
            enable_webhooks(account, running, bench.web.url)
        memory = bench.memory.window()
        started = time.time()
        # As "Generate all" does: one transaction, so the first creates leave together.
        takes, refused = takes_create(
            studio.scenes, lambda scene: take_create(scene=scene, account=account)
        )
        if refused:
            raise RuntimeError(f"{len(refused)} scenes were refused: {refused[0][1].messages}")
        jobs = _setup.wait_for_jobs([take.job_id for take in takes], timeout=3 * floor + 120)
        bench.memory.window()  # ends this pass's measurement
        failed = [job for job in jobs if job.state != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} takes did not succeed: {failed[0].error_message}")
        finished = {job.provider_job_id: job.finished_at.timestamp() for job in jobs}
        return PassResult(
            label=label,
            scenes=len(studio.scenes),
            started=started,
            wall=max(finished.values()) - started,
            entries=_setup.emulator_log(running),
            finishes_at=completion_times(running),
            finished_at=finished,
            memory=memory,
            webhooks=httpx.get(f"{running.url}/_emulator/state").json()["webhooks"]["deliveries"],
        )


def completion_times(running_emulator) -> dict[str, float]:
    """When each video reached its terminal state, from the emulator's own timeline."""
    return {video.id: video.timeline.finishes_at for video in running_emulator.app.videos.values()}


# --- Baseline -----------------------------------------------------------------------------------


def classic_script(http: httpx.Client, studio, folder: Path) -> dict[str, float]:
    """Register the character, then one scene at a time: create, poll every 5 s, download.

    Returns when each video was on disk (epoch s), by video id.
    """
    stored: dict[str, float] = {}
    character = studio.character
    registered = http.post(
        "/videos/characters",
        data={"name": character.name},
        files={"video": (f"{character.handle}.mp4", studio.clip, "video/mp4")},
    )
    registered.raise_for_status()
    for index, scene in enumerate(studio.scenes):
        created = http.post(
            "/videos",
            json={
                "model": "sora-2",
                "prompt": scene.prompt.replace(f"@{character.handle}", character.name),
                "seconds": str(scene.duration),
                "size": scene.size,
                "characters": [{"id": registered.json()["id"]}],
            },
        )
        created.raise_for_status()
        video = created.json()
        while video["status"] in ("queued", "in_progress"):
            time.sleep(BASELINE_POLL_SECONDS)
            polled = http.get(f"/videos/{video['id']}")
            polled.raise_for_status()
            video = polled.json()
        if video["status"] != "completed":
            raise RuntimeError(f"The baseline's video {video['id']} {video['status']}.")
        with (
            http.stream("GET", f"/videos/{video['id']}/content") as response,
            (folder / f"scene-{index + 1}.mp4").open("wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
        stored[video["id"]] = time.time()
    return stored


def run_baseline(studio, args) -> PassResult:
    with (
        _setup.emulator(**emulator_config(args)) as running,
        httpx.Client(
            base_url=running.api_url,
            headers={"Authorization": f"Bearer {BASELINE_API_KEY}"},
            timeout=60,
        ) as http,
        tempfile.TemporaryDirectory(prefix="castboard-baseline-") as folder,
    ):
        started = time.time()
        stored = classic_script(http, studio, Path(folder))
        return PassResult(
            label="baseline (classic script)",
            scenes=len(studio.scenes),
            started=started,
            wall=time.time() - started,
            entries=_setup.emulator_log(running),
            finishes_at=completion_times(running),
            finished_at=stored,
        )


# --- Where the time went ------------------------------------------------------------------------


def first_at_or_after(entries: list[dict], op: str, video: str, moment: float) -> float | None:
    times = [
        e["time"]
        for e in entries
        if e["op"] == op and _setup.video_id_of(e) == video and e["time"] >= moment
    ]
    return min(times, default=None)


def seen_times(result: PassResult) -> dict[str, float]:
    """Per video: when Castboard learnt it was done, the first read at or after its
    completion, or the first accepted webhook for it, whichever came first."""
    seen: dict[str, float] = {}
    for video, done in result.finishes_at.items():
        moments = [first_at_or_after(result.entries, "retrieve", video, done)]
        moments += [
            d["at"]
            for d in result.webhooks
            if d["ok"] and d["object_id"] == video and d["type"] == "video.completed"
        ]
        moments = [m for m in moments if m is not None]
        if moments:
            seen[video] = min(moments)
    return seen


def stage_lags(result: PassResult) -> dict[str, list[float]]:
    """Per video: provider done -> Castboard saw it / the content request; content request ->
    take stored; saw it -> content request."""
    lags: dict[str, list[float]] = {"seen": [], "content": [], "stored": [], "to_content": []}
    seen = seen_times(result)
    for video, done in result.finishes_at.items():
        content = first_at_or_after(result.entries, "content", video, done)
        if video in seen:
            lags["seen"].append(seen[video] - done)
        if content is not None:
            lags["content"].append(content - done)
            if video in seen:
                lags["to_content"].append(content - seen[video])
            if video in result.finished_at:
                lags["stored"].append(result.finished_at[video] - content)
    return lags


def create_times(result: PassResult) -> list[float]:
    return sorted(e["time"] - result.started for e in result.entries if e["op"] == "create")


def lane_handoffs(result: PassResult, concurrency: int, *, from_seen: bool = False) -> list[float]:
    """For create i >= concurrency: its time minus the (i - concurrency)-th provider completion
    (or, `from_seen`, the moment Castboard learnt of it).

    That is how long a provider slot stood idle between one video finishing there and
    the next create using it (every take is queued from the start).
    """
    creates = create_times(result)
    ends = seen_times(result).values() if from_seen else result.finishes_at.values()
    done = sorted(t - result.started for t in ends)
    return [creates[i] - done[i - concurrency] for i in range(concurrency, len(creates))]


def describe(values: list[float]) -> str:
    if not values:
        return "-"
    return f"mean {statistics.fmean(values):5.2f} s, max {max(values):5.2f} s (n={len(values)})"


def print_time_breakdown(result: PassResult, concurrency: int) -> None:
    lags = stage_lags(result)
    creates = create_times(result)
    print(f"  where the time went, {result.label}:")
    print(f"    provider done -> Castboard saw it       {describe(lags['seen'])}")
    print(f"    saw it -> content request              {describe(lags['to_content'])}")
    print(f"    provider done -> content request       {describe(lags['content'])}")
    print(f"    content request -> take stored         {describe(lags['stored'])}")
    idle = describe(lane_handoffs(result, concurrency))
    print(f"    provider slot idle, done -> next create {idle}")
    seen = describe(lane_handoffs(result, concurrency, from_seen=True))
    print(f"    slot seen free -> next create           {seen}")
    shown = creates[concurrency:]
    later = " ".join(f"{t:.1f}" for t in shown[:20]) + (" ..." if len(shown) > 20 else "")
    first_wave = f"#1 at {creates[0]:.2f}"
    if concurrency > 1:
        first_wave += f", #{concurrency} at {creates[concurrency - 1]:.2f}"
    print(f"    creates, s after start: {first_wave}; #{concurrency + 1} on: {later}")


# --- Report -------------------------------------------------------------------------------------


def print_pass(result: PassResult, floor: float) -> None:
    totals = result.totals()
    per_video = result.per_video.values()
    retrieves = [counts["retrieve"] for counts in per_video]
    print(
        f"{result.label:28} wall {result.wall:7.2f} s  ({result.wall / floor:.2f}x floor)  "
        f"requests/take mean {statistics.fmean(totals):.2f} max {max(totals)}  "
        f"(retrieves/take mean {statistics.fmean(retrieves):.2f})  "
        f"registrations {result.registrations}"
    )


def print_memory(result: PassResult) -> None:
    memory = result.memory
    print(
        f"  worker memory ({result.label}): peak {_setup.mib(memory.peak_sum_kib)} "
        f"= sum of RSS over the worker's process tree ({memory.processes} processes: "
        f"celery main + pool), from {_setup.mib(memory.start_sum_kib)} at the start; "
        f"largest single process {_setup.mib(memory.peak_single_kib)} "
        f"({memory.samples} samples at {_setup.SAMPLE_HZ} Hz)"
    )


def print_webhooks(result: PassResult) -> None:
    ok = sum(1 for delivery in result.webhooks if delivery["ok"])
    reads = sum(counts["retrieve"] for counts in result.per_video.values())
    timed = result.retrieves_before_completion()
    print(
        f"  webhooks: {ok}/{len(result.webhooks)} deliveries accepted; retrieves {reads} "
        f"({timed} before their video finished, {reads - timed} after)"
    )


def print_targets(args, results: list[PassResult], baseline: PassResult | None) -> None:
    allowed = 2 + args.latency / (args.poll_hint_ms / 1000)
    print("targets:")
    for result in results:
        floor = floor_seconds(args, result.scenes)
        target = TARGET_WEBHOOK_FLOOR_RATIO if "webhooks" in result.label else TARGET_FLOOR_RATIO
        print(
            _setup.verdict(
                f"{result.label}: within {target}x of the floor",
                result.wall <= target * floor,
                f"{result.wall:.2f} s = {result.wall / floor:.2f}x the {floor:.1f} s floor "
                f"(allowed {target * floor:.2f} s)",
            )
        )
        handoffs = lane_handoffs(result, args.concurrency)
        if handoffs:
            mean = statistics.fmean(handoffs)
            seen = statistics.fmean(lane_handoffs(result, args.concurrency, from_seen=True))
            print(
                _setup.verdict(
                    f"{result.label}: freed slot -> next create under "
                    f"{TARGET_HANDOFF_SECONDS:g} s on average",
                    mean < TARGET_HANDOFF_SECONDS,
                    f"mean {mean:.2f} s from the provider's completion "
                    f"({seen:.2f} s from the moment Castboard saw it)",
                )
            )
    polled = results[0]
    if baseline is None:
        print("  [skipped] at least 10x faster than the baseline (--skip-baseline)")
    else:
        speedup = baseline.wall / polled.wall
        print(
            _setup.verdict(
                f"{polled.label}: at least {TARGET_SPEEDUP:g}x faster than the baseline",
                speedup >= TARGET_SPEEDUP,
                f"{speedup:.1f}x ({baseline.wall:.1f} s / {polled.wall:.2f} s)",
            )
        )
    for result in results:
        if "polling" in result.label:
            worst = max(result.totals())
            print(
                _setup.verdict(
                    f"{result.label}: at most 2 + latency/poll hint = {allowed:g} provider "
                    "requests per take",
                    worst <= allowed,
                    f"worst take {worst}, mean {statistics.fmean(result.totals()):.2f} "
                    "(create + retrieves + content download; registrations counted apart)",
                )
            )
        else:
            reads = sum(counts["retrieve"] for counts in result.per_video.values())
            timed = result.retrieves_before_completion()
            print(
                _setup.verdict(
                    f"{result.label}: 0 polls with webhooks on",
                    reads == 0,
                    f"{reads} retrieves in all ({timed} of them before their video finished), "
                    f"{statistics.fmean(result.totals()):.2f} requests/take",
                )
            )


def print_header(args) -> None:
    print(
        f"Castboard orchestration benchmark: {args.scenes} scenes, latency {args.latency:g} s, "
        f"poll hint {args.poll_hint_ms} ms, account concurrency limit {args.concurrency}, "
        f"Celery prefork x{args.worker_concurrency}"
    )
    print(f"  floor = latency x ceil(N / limit) = {floor_seconds(args):.1f} s")
    print(
        f"  (default limit {DEFAULT_CONCURRENCY}, not the account model's 4: at 4 the floor, "
        "30 s, is above a tenth of the ~200 s baseline, so the 10x target could never be met)"
    )
    print(f"  engine: {_setup.engine_settings()}")
    print(f"  database: {'PostgreSQL' if args.database_url else 'a fresh SQLite file (WAL)'}")
    renders = "every video" if args.render_each else "one clip per shape, reused"
    print(
        f"  emulator renders at {_setup.EMULATOR_FPS} fps ({renders}); scenes are 4 s "
        f"1280x720; machine: {_setup.machine_load()}"
    )


def dump(folder: Path, *results: PassResult | None) -> None:
    """Each pass's emulator log, completion and storage times and webhooks, for analysis."""
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        if result is None:
            continue
        name = result.label.split(" (")[0].replace(", ", "-").replace(" ", "-").lower()
        data = {k: v for k, v in vars(result).items() if k != "memory"}
        (folder / f"{name}.json").write_text(json.dumps(data, indent=1))


def report(bench, args, results: list[PassResult], baseline: PassResult | None) -> None:
    for result in results:
        if "webhooks" in result.label:
            print_webhooks(result)
    for result in results:
        print_memory(result)
    for result in [*results, baseline]:
        if result is not None:
            print_time_breakdown(result, args.concurrency if "Castboard" in result.label else 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layout = _setup.one_worker(args.worker_concurrency)
    with _setup.Bench(
        "orchestration",
        worker_concurrency=args.worker_concurrency,
        workers=layout,
        web="process",  # its own process, as `make run` starts it
        database_url=args.database_url,
    ) as bench:
        studio = _setup.make_studio(scenes=args.scenes)
        if not args.render_each:
            scene = studio.scenes[0]
            _setup.render_shape_ahead(seconds=scene.duration, size=scene.size)
        print_header(args)
        floor = floor_seconds(args)
        results = []
        for webhooks in (False, True):
            results.append(run_castboard(bench, studio, args, webhooks=webhooks))
            print_pass(results[-1], floor)
        baseline = None if args.skip_baseline else run_baseline(studio, args)
        if baseline is not None:
            print_pass(baseline, floor)
            print(
                f"  Castboard (polling) vs baseline: {baseline.wall / results[0].wall:.1f}x faster"
            )
        if args.long_scenes:
            long = _setup.make_studio(scenes=args.long_scenes, slug="benchmark-long")
            for webhooks in (False, True):
                results.append(run_castboard(bench, long, args, webhooks=webhooks))
                print_pass(results[-1], floor_seconds(args, args.long_scenes))
        if not args.skip_two_workers:
            split = _setup.two_workers(args.worker_concurrency)
            bench.use_workers(split)
            print(
                "  now two workers: "
                + ", ".join(
                    f"{w.name} (queues {','.join(w.queues) or 'all'}, prefork x{w.concurrency})"
                    for w in split
                )
            )
            for webhooks in (False, True):
                results.append(
                    run_castboard(bench, studio, args, webhooks=webhooks, layout="two workers")
                )
                print_pass(results[-1], floor)
        report(bench, args, results, baseline)
        if args.dump:
            dump(args.dump, *results, baseline)
        print(f"  sweep enqueued: {dict(bench.sweeper.enqueued)}; machine: {_setup.machine_load()}")
        print_targets(args, results, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
