"""Storyboard benchmark: server time of the storyboard's first response, of a later slice
and of one card's status, at 300 and 3,000 scenes.

Builds the episodes of tests/studio/test_storyboard_queries.py (each scene with 3 takes in
mixed states and mentioning 2 characters with images) in a fresh SQLite file, then times
requests through Django's test Client: in process, so the figure is the server's time
(middleware, queries, rendering), with no network or browser in it.

* the storyboard page (episode_detail), as an owner sees it (every edit control): its
  header counts and its first slice of cards;
* a slice from the middle of the largest episode (episode_scenes, htmx): what scrolling
  loads;
* one card's status fragment (scene_status, htmx), for a scene with a take in flight.

Each is run `--warmups` times unmeasured, then `--runs` times; it prints the median,
p95 and min against the targets, the garbage collector's full passes during the runs
(each walks the whole process, ~100 ms on the 2-core machine, and sets the p95), and
the number of queries of each. `--profile` adds
the top of a cProfile of the page. It exits 0 whatever the times.

    .venv/bin/python benchmarks/storyboard.py [--scenes 300 3000] [--runs 30] [--warmups 3] \
        [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup

TARGET_PAGE_MS = 150.0
TARGET_STATUS_MS = 25.0
TARGET_SLICE_MS = 150.0
HTMX = {"HX-Request": "true"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenes", type=int, nargs="+", default=[300, 3000], help="episode sizes (300 3000)"
    )
    parser.add_argument("--runs", type=int, default=30, help="measured requests of each (30)")
    parser.add_argument("--warmups", type=int, default=3, help="unmeasured requests first (3)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the page")
    return parser.parse_args(argv)


def setup_django(run_dir: Path) -> None:
    """Django on a fresh SQLite file, static files collected as in production (DEBUG off:
    hashed names from the manifest); no Redis, worker or server, since nothing here enqueues."""
    from django.conf import settings
    from django.core.management import call_command

    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "media").mkdir(parents=True)
    (run_dir / "tmp").mkdir()
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")  # the test Client's host name
    _setup.configure_django(
        run_dir, redis_url="redis://127.0.0.1:9/0", public_url="http://127.0.0.1:9"
    )
    settings.STATIC_ROOT = run_dir / "static"
    call_command("collectstatic", interactive=False, verbosity=0)


def build(scenes: int):
    """(client logged in as the owner, page URL, status URL of a scene with a take in flight,
    URL of the slice from the middle of the episode)."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from jobs.models import IN_FLIGHT_STATES, JobState
    from studio.models import Membership, Role, Take, Workspace
    from tests.factories import UserFactory
    from tests.studio.test_storyboard_queries import storyboard_episode

    workspace = Workspace.objects.create(name=f"Benchmark {scenes}", slug=f"benchmark-{scenes}")
    owner = get_user_model().objects.filter(username="owner").first()
    owner = owner or UserFactory(username="owner")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    episode = storyboard_episode(workspace, scenes=scenes)
    busy = (
        Take.objects.filter(
            scene__episode=episode, job__state__in=[*IN_FLIGHT_STATES, JobState.PENDING]
        )
        .order_by("scene__position")
        .first()
    )
    client = Client()
    client.force_login(owner)
    page = episode.get_absolute_url()
    status = reverse("scene_status", args=[workspace.slug, busy.scene_id])
    middle = reverse("episode_scenes", args=[workspace.slug, episode.pk]) + f"?after={scenes // 2}"
    return client, page, status, middle


class FullCollections:
    """Counts the garbage collector's full (generation 2) passes while in use: each walks
    every object of the process, and is what sets the page's p95."""

    def __init__(self) -> None:
        self.count = 0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.count += 1

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def measure(request: Callable, *, runs: int, warmups: int, expect: int) -> tuple[list[float], int]:
    """(milliseconds per request, full GC passes among them), after the warm-ups; each
    answer's status is checked."""
    for _ in range(warmups):
        request()
    times = []
    with FullCollections() as full:
        for _ in range(runs):
            started = time.perf_counter()
            response = request()
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != expect:
                raise RuntimeError(f"Expected {expect}, got {response.status_code}")
    return times, full.count


def queries(request: Callable) -> tuple[int, float, int]:
    """(queries, their total time in ms as the database driver reported it, response bytes)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = request()
    seconds = sum(float(q["time"]) for q in captured.captured_queries)
    return len(captured.captured_queries), seconds * 1000, len(response.content)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(
    label: str, measured: tuple[list[float], int], target: float, counted: tuple
) -> tuple[str, bool]:
    times, full_gcs = measured
    count, sql_ms, size = counted
    median = statistics.median(times)
    print(
        f"{label:32} median {median:7.1f} ms  p95 {p95(times):7.1f} ms  min {min(times):7.1f} ms"
        f"  ({len(times)} runs, {full_gcs} full GC)  {count} queries ({sql_ms:.1f} ms in SQL)"
        f"  {size / 1024:.0f} KiB"
    )
    verdict = _setup.verdict(
        f"{label}: median at most {target:g} ms",
        median <= target,
        f"{median:.1f} ms (p95 {p95(times):.1f} ms)",
    )
    return verdict, median <= target


def profile(request: Callable, *, runs: int = 5, top: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        request()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\ncProfile of the page, {runs} requests, by cumulative time:")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django(_setup.BENCH_DIR / "storyboard")
    from studio.project.heap import freeze_startup_objects

    frozen = freeze_startup_objects()  # as studio/project/wsgi.py does when the server starts
    started = time.perf_counter()
    boards = {scenes: build(scenes) for scenes in args.scenes}
    built = time.perf_counter() - started
    largest = max(args.scenes)

    print(
        f"Castboard storyboard benchmark: {', '.join(map(str, args.scenes))} scenes (3 takes "
        f"and 2 mentions a scene; built in {built:.1f} s); Django test Client in process "
        f"(server time), SQLite, DEBUG off; {args.warmups} warm-ups then {args.runs} runs each; "
        f"{frozen:,} startup objects frozen out of the GC as the server does "
        f"(studio/project/heap.py); machine: {_setup.machine_load()}"
    )
    verdicts = []
    for scenes, (client, page_url, status_url, middle_url) in boards.items():

        def page(client=client, page_url=page_url):
            return client.get(page_url)

        def status(client=client, status_url=status_url):
            return client.get(status_url, headers=HTMX)

        def middle(client=client, middle_url=middle_url):
            return client.get(middle_url, headers=HTMX)

        timed = [
            (f"storyboard page, {scenes} scenes", page, TARGET_PAGE_MS),
            (f"status fragment, {scenes} scenes", status, TARGET_STATUS_MS),
        ]
        if scenes == largest:
            timed.append((f"middle slice, {scenes} scenes", middle, TARGET_SLICE_MS))
        for label, request, target in timed:
            measured = measure(request, runs=args.runs, warmups=args.warmups, expect=200)
            verdicts.append(report(label, measured, target, queries(request)))
    if args.profile:
        client, page_url = boards[largest][:2]
        profile(lambda: client.get(page_url))
    print("targets:")
    for line, _ in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
