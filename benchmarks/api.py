"""API benchmark: the server's time of the REST API and the OpenAI gateway, per call.

Builds a workspace with 300 takes in mixed states (the test factories) in a fresh SQLite
file, starts an embedded Redis (the per-token rate limit and the generation limits count
there; a take's send is published to it on commit, with no worker to take it, so new takes
stay pending), then times calls through Django's test Client with a Bearer token: in
process, so the figure is the server's time (middleware, token, rate limit, call log,
queries, serialising), with no network in it.

* GET /api/v1/workspaces: a trivial endpoint, so what the API's own layer costs a call
  (token lookup, the rate limit's Redis round trip, the call log's row);
* GET /api/v1/takes?limit=50 (and 10, 200: the query count must not grow with the page
  size), and walking all 300 with the cursor;
* POST /api/v1/scenes/{id}/takes with a fresh Idempotency-Key (a paid create) against its
  replay under the same key, which must make nothing;
* POST and GET /gateway/openai/v1/videos[/{id}] as an OpenAI SDK script calls them.

Each is run `--warmups` times unmeasured, then `--runs` times; it prints the median, p95
and min, the full GC passes among the runs, and the queries of one more call (counted as
assertNumQueries counts them, with the time spent executing them). It checks that the
list's query count is the same at every page size and that the replays made no take.
`--profile NAME` adds the top of a cProfile of one of them. It exits 0 whatever the times.

    .venv/bin/python benchmarks/api.py [--runs 30] [--warmups 3] \
        [--profile workspaces|list|create|replay|gateway-create|gateway-read]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup
from benchmarks.storyboard import FullCollections, p95

TAKES = 300
TAKES_PER_SCENE = 3
WALK_LIMIT = 50
PAGE_SIZES = (10, 50, 200)  # 200 is the API's largest page (studio.api.pagination.MAX_LIMIT)
# High enough that nothing in the run is refused: the figures are of the work, not of 429s.
LIMITS = {
    "RATE_LIMIT_API": "100000/60",
    "RATE_LIMIT_GENERATE": "100000/60",
    "RATE_LIMIT_GENERATE_WORKSPACE": "100000/60",
    # No take ends here; nor is an ended take's webhook event wanted if one did.
    "JOBS_ENDED_TASKS": "",
}
# A 4 s 1280x720 video, as the OpenAI SDK's videos.create sends it.
VIDEO = {"prompt": "A lighthouse keeper walks the pier.", "seconds": "4", "size": "1280x720"}
PROFILES = ("workspaces", "list", "create", "replay", "gateway-create", "gateway-read")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="measured calls of each (30)")
    parser.add_argument("--warmups", type=int, default=3, help="unmeasured calls first (3)")
    parser.add_argument(
        "--profile", choices=PROFILES, help="print a cProfile of this call (10 calls)"
    )
    return parser.parse_args(argv)


def setup_django(run_dir: Path, stack: ExitStack) -> str:
    """Django on a fresh SQLite file with an embedded Redis (stopped by `stack`); its URL."""
    shutil.rmtree(run_dir, ignore_errors=True)
    for folder in ("media", "tmp"):
        (run_dir / folder).mkdir(parents=True)
    redis, redis_url = _setup.start_redis_server(run_dir / "redis")
    stack.callback(_setup.stop_process, redis)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")  # the test Client's host name
    os.environ.update(LIMITS)
    _setup.configure_django(run_dir, redis_url=redis_url, public_url="http://127.0.0.1:9")
    return redis_url


# --- The workspace --------------------------------------------------------------------------


@dataclass
class ApiStudio:
    api: object  # tests.support.api.Api with an editor's token
    token: object  # its ApiToken row
    scene: object  # a 4 s 1280x720 scene the creates make takes of


def _take_fields(n: int, scene_index: int) -> dict:
    """The n-th take's state and what goes with it: a mix of finished (with files, some
    reviewed, one chosen in every other scene), failed, cancelled and in flight."""
    from jobs.models import ErrorCode, JobState

    state = [
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.RUNNING,
        JobState.SUCCEEDED,
        JobState.PENDING,
        JobState.CANCELLED,
        JobState.QUEUED,
        JobState.SUCCEEDED,
        JobState.DOWNLOADING,
    ][n % 9]
    fields: dict = {"state": state}
    if state == JobState.SUCCEEDED:
        fields |= {
            "job__video": f"jobs/{n}/video.mp4",
            "job__thumbnail": f"jobs/{n}/thumbnail.jpg",
            "job__cost_estimate": "0.80",
            "job__cost_actual": "0.80",
        }
        if n % 2:
            fields |= {"review_state": "rejected", "review_codes": ["face", "style"]}
            fields |= {"review_reason": "Her scarf changes colour.", "review_face": 40}
        elif scene_index % 2 == 0 and n % TAKES_PER_SCENE == 0:
            fields |= {"review_state": "approved", "is_selected": True}
    elif state == JobState.FAILED:
        fields |= {
            "job__error_code": ErrorCode.MODERATION,
            "job__error_message": "The provider refused the prompt (moderation).",
        }
    elif state == JobState.RUNNING:
        fields["job__progress"] = 40
    return fields


def build() -> ApiStudio:
    """A workspace with an OpenAI account, TAKES takes over TAKES / TAKES_PER_SCENE scenes of
    one episode, and an editor's token (made by an owner, as make_token makes them)."""
    from studio.api.tokens import digest_of
    from studio.models import ApiToken, Role
    from tests.factories import (
        EpisodeFactory,
        SceneFactory,
        SeriesFactory,
        TakeFactory,
        WorkspaceFactory,
    )
    from tests.jobs.factories import ProviderAccountFactory
    from tests.support.api import Api, make_token

    workspace = WorkspaceFactory(name="Benchmark studio", slug="benchmark")
    openai = ProviderAccountFactory(
        workspace=workspace, name="OpenAI", kind="openai", model="sora-2"
    )
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace, title="Harbour Lights"))
    scenes = [
        SceneFactory(episode=episode, prompt=f"The lamp turns over a grey sea, shot {i + 1}.")
        for i in range(TAKES // TAKES_PER_SCENE)
    ]
    for n in range(TAKES):
        index = n // TAKES_PER_SCENE
        TakeFactory(scene=scenes[index], account=openai, **_take_fields(n, index))
    # 4 s at 1280x720: sora-2 makes it ($0.40).
    scene = SceneFactory(episode=episode, prompt="Mina waits on the pier.", duration=4)
    raw = make_token(workspace, role=Role.EDITOR, name="benchmark")
    return ApiStudio(api=Api(raw), token=ApiToken.objects.get(digest=digest_of(raw)), scene=scene)


# --- Measuring ------------------------------------------------------------------------------


@dataclass
class Figures:
    label: str
    times: list[float]
    full_gcs: int
    queries: int
    sql_ms: float
    size: int


def check(response, expect: int) -> None:
    if response.status_code != expect:
        raise RuntimeError(
            f"Expected {expect}, got {response.status_code}: {response.content[:300]!r}"
        )


def measure(label: str, call: Callable, *, runs: int, warmups: int, expect: int = 200) -> Figures:
    """`call` `warmups` times, then `runs` times timed, then once with its queries counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmups):
        check(call(), expect)
    times = []
    with FullCollections() as full:
        for _ in range(runs):
            started = time.perf_counter()
            response = call()
            times.append((time.perf_counter() - started) * 1000)
            check(response, expect)
    sql = SqlTime()
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(sql):
        response = call()
    check(response, expect)
    return Figures(label, times, full.count, len(captured), sql.ms, len(response.content))


class SqlTime:
    """The time spent executing statements (Django's own record rounds it to the ms)."""

    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ms += (time.perf_counter() - started) * 1000


def query_count(call: Callable, expect: int = 200) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        check(call(), expect)
    return len(captured)


def row(figures: Figures) -> str:
    t = figures.times
    return (
        f"{figures.label:44} {statistics.median(t):7.2f} {p95(t):7.2f} {min(t):7.2f}"
        f"  {figures.queries:4d} {figures.sql_ms:7.2f}  {figures.full_gcs:3d} {figures.size:7,d}"
    )


HEADER = (
    f"{'call':44} {'median':>7} {'p95':>7} {'min':>7}  {'qry':>4} {'SQL ms':>7}  "
    f"{'gc2':>3} {'bytes':>7}"
)


def walk(api, limit: int) -> tuple[int, int]:
    """Every take of the workspace, page by page as a script reads them: (pages, items)."""
    cursor, pages, items = None, 0, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get("/api/v1/takes", query)
        check(response, 200)
        body = json.loads(response.content)
        pages, items, cursor = pages + 1, items + len(body["items"]), body["next_cursor"]
        if cursor is None:
            return pages, items


def redis_hit_ms(token, runs: int) -> float:
    """The median time of the rate limit's own Redis round trip (one Lua script call)."""
    from django.conf import settings

    from studio.project import ratelimit

    rate = ratelimit.Rate.parse(settings.RATE_LIMIT_API, setting="RATE_LIMIT_API")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ratelimit.hit("api:bench-probe", str(token.pk), rate)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def profile(label: str, call: Callable, *, runs: int = 10, top: int = 30) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\ncProfile of {label}, {runs} calls, by cumulative time:")
    print(out.getvalue())


# --- The run --------------------------------------------------------------------------------


@dataclass
class Walk:
    pages: int
    items: int
    times: list[float]


@dataclass
class Replays:
    count: int
    takes_made: int


def take_lists(api, calls: dict, measured: dict) -> tuple[Figures, dict[int, int], Walk]:
    """One page of 50, the queries of a page at each size, and walks through every take."""
    calls["list"] = lambda: api.get("/api/v1/takes", {"limit": 50})
    page = measure("GET /api/v1/takes?limit=50", calls["list"], **measured)
    per_page = {
        limit: query_count(lambda limit=limit: api.get("/api/v1/takes", {"limit": limit}))
        for limit in PAGE_SIZES
    }
    times = []
    for n in range(measured["warmups"] + max(3, measured["runs"] // 6)):
        started = time.perf_counter()
        pages, items = walk(api, WALK_LIMIT)
        if n >= measured["warmups"]:
            times.append((time.perf_counter() - started) * 1000)
    return page, per_page, Walk(pages, items, times)


def paid_creates(api, scene, calls: dict, measured: dict) -> tuple[Figures, Figures, Replays]:
    """A take made under a fresh Idempotency-Key each time, then one key replayed: the
    replays must give the first answer back and make no take."""
    from studio.models import ApiCall, Take

    keys = iter(range(1, 1_000_000))
    url = f"/api/v1/scenes/{scene.pk}/takes"
    calls["create"] = lambda: api.post(url, {}, headers={"Idempotency-Key": f"k{next(keys)}"})
    create = measure(f"POST {url} (new key)", calls["create"], expect=201, **measured)
    first = api.post(url, {}, headers={"Idempotency-Key": "replayed"})
    check(first, 201)
    takes_before = Take.objects.count()
    replays_before = ApiCall.objects.filter(replayed=True).count()

    def replay():
        response = api.post(url, {}, headers={"Idempotency-Key": "replayed"})
        if response.get("Idempotent-Replayed") != "true" or response.content != first.content:
            raise RuntimeError("The replay did not give the first answer back.")
        return response

    calls["replay"] = replay
    replayed = measure(f"POST {url} (replay)", replay, expect=201, **measured)
    replays = Replays(
        count=ApiCall.objects.filter(replayed=True).count() - replays_before,
        takes_made=Take.objects.count() - takes_before,
    )
    return create, replayed, replays


def gateway(api, calls: dict, measured: dict) -> tuple[Figures, Figures]:
    """The OpenAI gateway as the SDK's videos.create and videos.retrieve call it."""
    calls["gateway-create"] = lambda: api.post("/gateway/openai/v1/videos", VIDEO)
    create = measure("POST /gateway/openai/v1/videos", calls["gateway-create"], **measured)
    video_id = json.loads(calls["gateway-create"]().content)["id"]
    calls["gateway-read"] = lambda: api.get(f"/gateway/openai/v1/videos/{video_id}")
    read = measure("GET /gateway/openai/v1/videos/{id}", calls["gateway-read"], **measured)
    return create, read


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with ExitStack() as stack:
        setup_django(_setup.BENCH_DIR / "api", stack)
        from django.conf import settings

        from studio.project.heap import freeze_startup_objects

        frozen = freeze_startup_objects()  # as studio/project/wsgi.py does when it starts
        built = time.monotonic()
        bench = build()
        print(
            f"Castboard API benchmark: {TAKES} takes in mixed states over "
            f"{TAKES // TAKES_PER_SCENE} scenes (built in {time.monotonic() - built:.1f} s); "
            f"Django test Client in process with a Bearer token (server time), SQLite, DEBUG "
            f"off, embedded Redis (RATE_LIMIT_API={settings.RATE_LIMIT_API}), no worker; "
            f"{args.warmups} warm-ups then {args.runs} runs each; {frozen:,} startup objects "
            f"frozen out of the GC; machine: {_setup.machine_load()}"
        )
        measured = {"runs": args.runs, "warmups": args.warmups}
        calls: dict[str, Callable] = {
            # The API's own layer, on an endpoint that does next to nothing.
            "workspaces": lambda: bench.api.get("/api/v1/workspaces"),
        }
        layer = measure("GET /api/v1/workspaces", calls["workspaces"], **measured)
        # Before the creates, so the list holds exactly the TAKES built.
        page, per_page, walks = take_lists(bench.api, calls, measured)
        create, replayed, replays = paid_creates(bench.api, bench.scene, calls, measured)
        gateway_create, gateway_read = gateway(bench.api, calls, measured)
        redis_ms = redis_hit_ms(bench.token, args.runs)

        print(
            "\nserver time per call in ms; the queries of one more call (as assertNumQueries "
            "counts them) and the time spent executing them"
        )
        print(HEADER)
        for figures in (layer, page, create, replayed, gateway_create, gateway_read):
            print(row(figures))
        walk_ms = statistics.median(walks.times)
        print(
            f"walk every take, limit={WALK_LIMIT}: {walks.pages} pages, {walks.items} takes, "
            f"median {walk_ms:.1f} ms a walk ({len(walks.times)} walks), "
            f"{walk_ms / walks.pages:.1f} ms a page"
        )
        print(f"the rate limit's Redis round trip alone: median {redis_ms:.2f} ms")
        print(f"takes made by {replays.count} replays: {replays.takes_made}")
        print("checks:")
        flat = len(set(per_page.values())) == 1
        counts = ", ".join(f"limit={limit}: {count}" for limit, count in per_page.items())
        print(_setup.verdict("list queries do not grow with the page size", flat, counts))
        print(
            _setup.verdict(
                "a replay makes nothing",
                replays.takes_made == 0 and replays.count > 0,
                f"{replays.takes_made} takes made by {replays.count} replays",
            )
        )
        if args.profile:
            profile(args.profile, calls[args.profile])
        print(f"\n(whole run {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
