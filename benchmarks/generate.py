"""Generate-all benchmark: the plan page and the request of a 300-scene episode, and the
task's time to create every take.

Builds the episode of tests/studio/test_storyboard_queries.py (each scene mentioning 2
characters with images) with no takes yet, a dialogue line per scene spoken by a third
character, and two provider accounts (OpenAI, Seedance), in a fresh SQLite file, with an
embedded Redis (the throttle and the task's queue). Requests go through Django's test
Client in process, so the figures are the server's time (middleware, queries, rendering).

* the plan page (GET episode_generate): every waiting scene priced at each account;
* the request (POST episode_generate, automatic routing): validated, priced and held
  against the budgets at once, the batch handed to a task; the batch, its hold and the
  throttle's count are removed between runs so each run does the same work;
* the task (studio.batches.batch_run, in this process): one take and job per scene.

It prints the median and min of each with its number of queries, against the 300 ms target,
and exits 0 whatever the times.

    .venv/bin/python benchmarks/generate.py [--scenes 300] [--runs 7] [--warmups 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup

TARGET_MS = 300.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=300, help="scenes in the episode (300)")
    parser.add_argument("--runs", type=int, default=7, help="measured requests of each (7)")
    parser.add_argument("--warmups", type=int, default=2, help="unmeasured requests first (2)")
    return parser.parse_args(argv)


def build(scenes: int):
    """(client logged in as the owner, the generate-all URL, the episode)."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from studio.models import Membership, Role, Workspace
    from tests.factories import UserFactory
    from tests.studio.test_generate_all import waiting_episode

    workspace = Workspace.objects.create(name=f"Benchmark {scenes}", slug=f"benchmark-{scenes}")
    owner = get_user_model().objects.filter(username="owner").first()
    owner = owner or UserFactory(username="owner")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    episode = waiting_episode(workspace, scenes=scenes)
    client = Client()
    client.force_login(owner)
    return client, reverse("episode_generate", args=[workspace.slug, episode.pk]), episode


def forget(episode) -> None:
    """Undo a request or a task: the episode's batches, takes, jobs and ledger entries, and
    the throttle's counts, so the next run does the same work."""
    import redis
    from django.conf import settings

    from jobs.models import Job, LedgerEntry
    from studio.models import GenerationBatch, Take

    takes = Take.objects.filter(scene__episode=episode)
    jobs = list(takes.values_list("job_id", flat=True))
    batches = list(GenerationBatch.objects.filter(episode=episode))
    takes.delete()
    LedgerEntry.objects.filter(job_id__in=jobs).delete()
    LedgerEntry.objects.filter(hold__in=[b.hold_key for b in batches]).delete()
    Job.objects.filter(pk__in=jobs).delete()
    GenerationBatch.objects.filter(episode=episode).delete()
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter("castboard:rate:*"))
    if keys:
        client.delete(*keys)
    client.close()


def timed(request: Callable, *, expect: int) -> tuple[float, float, int]:
    """(milliseconds, CPU milliseconds of this process, queries) of one request; its status
    is checked. The CPU time is what the request costs whatever else the machine runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started, cpu = time.perf_counter(), time.process_time()
        response = request()
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu) * 1000
    if response.status_code != expect:
        raise RuntimeError(f"Expected {expect}, got {response.status_code}")
    return elapsed, cpu, len(captured.captured_queries)


def line(label: str, figures: list[tuple[float, float, int]], target: float | None) -> str:
    times = [ms for ms, _, _ in figures]
    cpu = statistics.median(c for _, c, _ in figures)
    counts = sorted({n for _, _, n in figures})
    median = statistics.median(times)
    print(
        f"{label:34} median {median:7.1f} ms  min {min(times):7.1f} ms  max {max(times):7.1f} ms"
        f"  (CPU {cpu:5.1f} ms)  ({len(times)} runs)  {'/'.join(map(str, counts))} queries"
    )
    if target is None:
        return ""
    return _setup.verdict(
        f"{label}: median at most {target:g} ms", median <= target, f"{median:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = _setup.BENCH_DIR / "generate"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "media").mkdir(parents=True)
    (run_dir / "tmp").mkdir()
    from studio.project.redis_server import free_port, start_redis

    redis_process = start_redis(port=(port := free_port()), directory=run_dir)
    try:
        os.environ.setdefault("ALLOWED_HOSTS", "testserver")
        _setup.configure_django(
            run_dir, redis_url=f"redis://127.0.0.1:{port}/0", public_url="http://127.0.0.1:9"
        )
        from django.conf import settings
        from django.core.management import call_command

        settings.STATIC_ROOT = run_dir / "static"  # DEBUG is off: hashed names, as in production
        call_command("collectstatic", interactive=False, verbosity=0)
        return run(args)
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)


def run(args: argparse.Namespace) -> int:
    from studio import batches
    from studio.models import GenerationBatch, Take

    started = time.perf_counter()
    client, url, episode = build(args.scenes)
    print(f"Built a {args.scenes}-scene episode in {time.perf_counter() - started:.1f} s.\n")

    plan = [timed(lambda: client.get(url), expect=200) for _ in range(args.warmups + args.runs)]
    posts = []
    for _ in range(args.warmups + args.runs):
        posts.append(timed(lambda: client.post(url, {"account": "auto"}), expect=302))
        made = GenerationBatch.objects.get(episode=episode)
        if made.total != args.scenes:
            raise RuntimeError(f"The batch has {made.total} scenes, not {args.scenes}.")
        forget(episode)
    verdicts = [
        line("plan page (GET)", plan[args.warmups :], TARGET_MS),
        line("generate-all (POST, automatic)", posts[args.warmups :], TARGET_MS),
    ]

    tasks = []
    for _ in range(3):
        client.post(url, {"account": "auto"})
        batch = GenerationBatch.objects.get(episode=episode)
        begun = time.perf_counter()
        batches.batch_run(batch_id=batch.pk, worker="benchmark")
        tasks.append((time.perf_counter() - begun) * 1000)
        batch.refresh_from_db()
        takes = Take.objects.filter(batch=batch).count()
        if (batch.state, takes) != (GenerationBatch.State.DONE, args.scenes):
            raise RuntimeError(f"The task ended {batch.state} with {takes} takes.")
        forget(episode)
    print(
        f"{'the task: every take made':34} median {statistics.median(tasks):7.1f} ms  "
        f"min {min(tasks):7.1f} ms  ({len(tasks)} runs, {args.scenes} takes each, "
        f"{statistics.median(tasks) / args.scenes:.1f} ms a take)"
    )
    print()
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
