"""The environment both benchmarks run in, brought up from nothing and torn down at the end.

`Bench` configures Django on a fresh SQLite file under var/bench/<name>/ (media next
to it), migrates it, then starts an embedded Redis, optionally the Django app on a
loopback HTTP port (for provider webhooks), a real `celery -A studio worker`
subprocess, the periodic sweep (run here every second, as beat would) and a sampler
of the worker's memory. Closing it (it is a context manager) stops all of that in
reverse order, also after an error or Ctrl-C.

The helpers below it build a studio (workspace, character with a 3 s clip, scenes),
read the emulators' request logs and measure the worker's process tree in /proc.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "var" / "bench"
MIB = 1024 * 1024
SWEEP_SECONDS = 1.0  # as beat with JOBS_SWEEP_SECONDS=1 (its smallest value)
SAMPLE_HZ = 20
EMULATOR_FPS = 6  # as the pipeline tests: renders a 4 s 1280x720 result in about 0.25 s
CLIP_SECONDS = 3.0
# Engine settings for the benchmark (the shell may override any of them).
ENGINE_DEFAULTS = {
    # The settings' minimum (100 ms), far below the provider's hint, so the hint governs.
    "JOBS_MIN_POLL_MS": "100",
    "JOBS_SWEEP_GRACE_SECONDS": "2",
    "JOBS_RECONCILE_DELAY_SECONDS": "1",
    "JOBS_WEBHOOK_SAFETY_POLL_SECONDS": "60",
}

log = logging.getLogger("benchmarks")


# --- Django -----------------------------------------------------------------------------------


def fresh_postgres(url: str) -> str:
    """Drop and create the database `url` names (a benchmark's own, never a shared one)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("castboard_bench"):
        raise SystemExit(
            f"Refusing to recreate {name!r}: a benchmark database is castboard_bench*."
        )
    server = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url


def configure_django(
    run_dir: Path, *, redis_url: str, public_url: str, database_url: str = ""
) -> None:
    """Point settings at this run's database, media, Redis and URL, set Django up, migrate.

    The database is a fresh SQLite file, or with `database_url` a fresh PostgreSQL
    database (dropped and created again). The environment is set before django.setup()
    and inherited by the worker subprocess, so both processes read the same settings.
    """
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "studio.project.settings",
            "DATABASE_URL": fresh_postgres(database_url)
            if database_url
            else f"sqlite:///{run_dir / 'db.sqlite3'}",
            "MEDIA_ROOT": str(run_dir / "media"),
            "TMPDIR": str(run_dir / "tmp"),  # the worker's download temp files, removed at exit
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": public_url,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",  # the webhook endpoint is plain HTTP on loopback
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in ENGINE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # DEBUG is off, so the keys must be given (as in production); these are the run's own.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ENCRYPTION_KEYS", secrets.token_urlsafe(50))
    os.environ.setdefault("PROVIDER_ALLOWED_NETWORKS", "127.0.0.1/32")  # the emulators
    # Static files are irrelevant here; WhiteNoise warns when STATIC_ROOT was never collected.
    warnings.filterwarnings("ignore", message="No directory at")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def engine_settings() -> str:
    from django.conf import settings

    return (
        f"JOBS_MIN_POLL_SECONDS={settings.JOBS_MIN_POLL_SECONDS:g}, "
        f"JOBS_SWEEP_GRACE_SECONDS={settings.JOBS_SWEEP_GRACE_SECONDS}, "
        f"JOBS_LANE_RECHECK_SECONDS={settings.JOBS_LANE_RECHECK_SECONDS}, "
        f"JOBS_WEBHOOK_SAFETY_POLL_SECONDS={settings.JOBS_WEBHOOK_SAFETY_POLL_SECONDS}, "
        f"sweep every {SWEEP_SECONDS:g} s"
    )


# --- Processes and threads --------------------------------------------------------------------


def start_redis_server(directory: Path) -> tuple[subprocess.Popen, str]:
    from studio.project.redis_server import free_port, start_redis

    port = free_port()
    return start_redis(port=port, directory=directory), f"redis://127.0.0.1:{port}/0"


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


class WebServer:
    """The Django app on a loopback port, from a thread: what the emulator's webhooks reach."""

    def __init__(self, port: int) -> None:
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
        from django.core.wsgi import get_wsgi_application

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadedWSGIServer(("127.0.0.1", port), QuietHandler)
        self.server.set_app(get_wsgi_application())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class WebProcess:
    """`manage.py runserver` in its own process, as `make run` starts the web server.

    The webhook receiver then has its own interpreter: in the thread of WebServer it
    shares one GIL with the emulator (a provider, which runs on other machines) serving
    downloads to the workers, and its answers wait for that.
    """

    def __init__(self, run_dir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = run_dir / "web.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> WebProcess:
        argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own server, fixed argv
                argv, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"The web server did not start; see {self.log_path}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


class Sweeper(threading.Thread):
    """jobs.sweep.run() every SWEEP_SECONDS, as Celery beat's sweep-jobs entry would."""

    def __init__(self, interval: float = SWEEP_SECONDS) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.interval = interval
        self.enqueued: Counter[str] = Counter()
        self._stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from jobs import sweep

        try:
            while not self._stopping.wait(self.interval):
                try:
                    self.enqueued.update(sweep.run())
                except Exception:
                    log.exception("sweep failed")
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


@dataclass(frozen=True)
class WorkerSpec:
    """One `celery worker` process: its name, the queues it takes (all when empty), its pool."""

    name: str
    queues: tuple[str, ...]
    concurrency: int


def one_worker(concurrency: int) -> tuple[WorkerSpec, ...]:
    """A single worker taking every queue: the smallest deployment."""
    return (WorkerSpec("worker", (), concurrency),)


def two_workers(concurrency: int) -> tuple[WorkerSpec, ...]:
    """The Procfile's layout: one worker for sends, polls and reconciliations (the "celery"
    queue), one for downloads ("media"), the pool split between them."""
    sends = max(1, concurrency // 2)
    return (
        WorkerSpec("worker", ("celery",), sends),
        WorkerSpec("media", ("media",), max(1, concurrency - sends)),
    )


def start_worker(
    run_dir: Path,
    *,
    redis_url: str,
    concurrency: int,
    queues: tuple[str, ...] = (),
    name: str = "worker",
    timeout: float = 60.0,
):
    """A real `celery -A studio worker` subprocess (prefork), returned once it says "ready"."""
    from tests.support.processes import WorkerProcess

    log_path = run_dir / f"{name}.log"
    worker = WorkerProcess(
        redis_url=redis_url,
        media_root=run_dir / "media",
        concurrency=concurrency,
        log_path=log_path,
        queues=queues,
        name=name,
    ).start()
    deadline = time.monotonic() + timeout
    while b" ready." not in log_path.read_bytes():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"The Celery worker did not start; see {log_path}")
        time.sleep(0.1)
    return worker


# --- Memory of a process tree (/proc) ---------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (e.g. Celery's main process and its pool children)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                parents[int(entry.name)] = parent
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def status_kib(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM`-style field of /proc/<pid>/status in KiB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pid: int) -> None:
    """Reset the kernel's VmHWM (peak RSS) of `pid` to its current RSS (clear_refs, value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class MemoryWindow:
    start_sum_kib: int = 0
    peak_sum_kib: int = 0
    peak_single_kib: int = 0
    processes: int = 0
    samples: int = 0

    @property
    def growth_kib(self) -> int:
        return self.peak_sum_kib - self.start_sum_kib


class MemorySampler(threading.Thread):
    """Samples the RSS of a process tree at SAMPLE_HZ; `window()` starts a fresh measurement."""

    def __init__(self, root_pids) -> None:
        """`root_pids()` names the roots now (a benchmark may replace a worker it kills)."""
        super().__init__(name="rss-sampler", daemon=True)
        self.root_pids = root_pids
        self.current = MemoryWindow()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tree: list[int] = []
        self._tree_at = 0.0

    def sample(self) -> tuple[int, int, int]:
        """(sum of RSS, largest RSS, process count) over the tree now, in KiB."""
        if time.monotonic() - self._tree_at > 1.0:  # the pool is stable; re-read it each second
            self._tree = [pid for root in self.root_pids() for pid in process_tree(root)]
            self._tree_at = time.monotonic()
        rss = [status_kib(pid, "VmRSS") for pid in self._tree]
        return sum(rss), max(rss, default=0), len(rss)

    def window(self) -> MemoryWindow:
        """Start a new measurement (ending the previous one) and return it; it fills as it runs."""
        total, largest, count = self.sample()
        with self._lock:
            self.current = MemoryWindow(total, total, largest, count, 1)
            return self.current

    def run(self) -> None:
        while not self._stopping.wait(1 / SAMPLE_HZ):
            total, largest, count = self.sample()
            with self._lock:
                window = self.current
                window.peak_sum_kib = max(window.peak_sum_kib, total)
                window.peak_single_kib = max(window.peak_single_kib, largest)
                window.processes = max(window.processes, count)
                window.samples += 1

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


# --- The environment --------------------------------------------------------------------------


class Bench:
    """Everything a benchmark runs on; a context manager that stops it all on the way out."""

    def __init__(
        self,
        name: str,
        *,
        worker_concurrency: int,
        workers: tuple[WorkerSpec, ...] | None = None,
        web: bool | str = False,
        keep_media: bool = True,
        database_url: str = "",
    ) -> None:
        self.name = name
        self.database_url = database_url
        self.worker_concurrency = worker_concurrency
        self.worker_specs = workers or one_worker(worker_concurrency)
        self.workers: list = []
        self.web_enabled = web
        self.keep_media = keep_media
        self.run_dir = BENCH_DIR / name
        self._stack = ExitStack()

    def __enter__(self) -> Bench:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        from studio.project.redis_server import free_port

        shutil.rmtree(self.run_dir, ignore_errors=True)
        for folder in ("media", "tmp"):
            (self.run_dir / folder).mkdir(parents=True)
        # Registered first, so it runs last: after the worker has stopped writing.
        self._stack.callback(self._remove_files)
        self.redis, self.redis_url = start_redis_server(self.run_dir / "redis")
        # Whichever Redis runs at the end (a benchmark may stop and restart it).
        self._stack.callback(lambda: stop_process(self.redis))
        web_port = free_port()
        configure_django(
            self.run_dir,
            redis_url=self.redis_url,
            public_url=f"http://127.0.0.1:{web_port}",
            database_url=self.database_url,
        )
        if self.web_enabled == "process":
            self.web = WebProcess(self.run_dir, web_port).start()
            self._stack.callback(self.web.stop)
        elif self.web_enabled:
            self.web = WebServer(web_port).start()
            self._stack.callback(self.web.stop)
        self.use_workers(self.worker_specs)
        # Whichever workers run at the end (recovery.py replaces the one it kills).
        self._stack.callback(lambda: [worker.stop() for worker in self.workers])
        self.sweeper = Sweeper()
        self.sweeper.start()
        self._stack.callback(self.sweeper.stop)
        self.memory = MemorySampler(lambda: [worker.pid for worker in self.workers])
        self.memory.start()
        self._stack.callback(self.memory.stop)

    def _remove_files(self) -> None:
        shutil.rmtree(self.run_dir / "tmp", ignore_errors=True)
        if not self.keep_media:
            shutil.rmtree(self.run_dir / "media", ignore_errors=True)

    def use_workers(self, specs: tuple[WorkerSpec, ...]) -> None:
        """Stop the running workers and start `specs` instead (same database and Redis)."""
        for worker in self.workers:
            worker.stop()
        self.worker_specs = specs
        self.workers = [
            start_worker(
                self.run_dir,
                redis_url=self.redis_url,
                concurrency=spec.concurrency,
                queues=spec.queues,
                name=spec.name,
            )
            for spec in specs
        ]

    @property
    def worker(self):
        """The first (in the default layout, the only) worker."""
        return self.workers[0]

    @worker.setter
    def worker(self, replacement) -> None:
        self.workers[0] = replacement

    def worker_pool_pids(self) -> list[int]:
        """The pool processes of every worker (not their main processes)."""
        mains = {worker.pid for worker in self.workers}
        return [pid for main in mains for pid in process_tree(main) if pid not in mains]


class Prerenderer(threading.Thread):
    """Renders each emulated video as soon as it is created, in the background.

    The emulator renders lazily, on the first download; a real provider has the file
    ready when the job completes. Rendering during the latency keeps the emulator's
    CPU out of the measured download (for Castboard and the baseline alike).
    """

    def __init__(self, app) -> None:
        super().__init__(name="prerender", daemon=True)
        self.app = app
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.05):
            for video in self.app.videos.values():
                video.media.get()  # renders once; later calls return the result

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


@contextmanager
def emulator(*, reuse_renders: bool = False, **config: Any) -> Iterator:
    """An OpenAI Videos emulator on a free loopback port, pre-rendering its results.

    `reuse_renders`: every video of one shape (length, size, frame rate) gets the clip
    rendered for the first one. A provider renders on its own machines; here the encoder
    would share this machine's two cores with the workers it is measuring. The files
    are still real MP4s that the download streams, probes and previews as any other.
    """
    from jobs.emulators import openai
    from jobs.emulators.base import serve

    config.setdefault("fps", EMULATOR_FPS)
    render_each = openai.render_video
    if reuse_renders:
        openai.render_video = _rendered_once(render_each)
    running = serve(openai.OpenAIVideosEmulator(**config))
    renderer = Prerenderer(running.app)
    renderer.start()
    try:
        yield running
    finally:
        renderer.stop()
        running.stop()
        openai.render_video = render_each


_RENDERS: dict[tuple, Any] = {}
_RENDERS_LOCK = threading.Lock()


def render_shape_ahead(*, seconds: float, size: str, fps: int = EMULATOR_FPS) -> None:
    """Render the clip of one shape before the passes (for emulators that reuse renders)."""
    from jobs.emulators.render import render_video

    width, height = (int(side) for side in size.split("x"))
    _rendered_once(render_video)(
        prompt="", seconds=float(seconds), width=width, height=height, fps=fps
    )


def _rendered_once(render):
    """`render`, remembered per clip shape for the whole run (the prompt, label, cast pictures
    and drift ignored: the orchestration passes measure the engine, not what a clip shows)."""

    def render_shape(*, seconds, width, height, fps, **drawing):
        key = (seconds, width, height, fps)
        with _RENDERS_LOCK:
            if key not in _RENDERS:
                _RENDERS[key] = render(
                    seconds=seconds, width=width, height=height, fps=fps, **drawing
                )
            return _RENDERS[key]

    return render_shape


def run_main(main) -> int:
    """Run `main()` so that SIGTERM and Ctrl-C still unwind every `with` (and stop processes)."""

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        return main()
    except KeyboardInterrupt:
        print("\nInterrupted: everything the benchmark started has been stopped.", file=sys.stderr)
        return 130


# --- The studio being benchmarked -------------------------------------------------------------


@dataclass
class Studio:
    workspace: Any
    episode: Any
    character: Any
    clip: bytes
    scenes: list = field(default_factory=list)


def make_studio(
    *, scenes: int, handle: str = "mina", name: str = "Mina", slug: str = "benchmark"
) -> Studio:
    """A workspace with one character (a 3 s reference clip), a series, an episode, scenes.

    Every scene mentions the character, so its registration at the provider is on the path.
    """
    from django.core.files.uploadedfile import SimpleUploadedFile

    from characters.services import asset_add, character_create
    from studio.models import Episode, Scene, Series, Workspace
    from tests.samples import clip_bytes

    workspace = Workspace.objects.create(name=f"Benchmark studio {slug}", slug=slug)
    series = Series.objects.create(workspace=workspace, title="Harbour Lights")
    episode = Episode.objects.create(series=series, number=1, title="Pilot")
    character = character_create(workspace=workspace, name=name, handle=handle)
    clip = clip_bytes(seconds=CLIP_SECONDS)
    asset_add(character=character, upload=SimpleUploadedFile(f"{handle}.mp4", clip, "video/mp4"))
    studio = Studio(workspace=workspace, episode=episode, character=character, clip=clip)
    for position in range(scenes):
        studio.scenes.append(
            Scene.objects.create(
                episode=episode,
                position=position,
                title=f"Scene {position + 1}",
                prompt=f"@{handle} walks along the harbour at dusk, shot {position + 1}.",
                duration=4,
                size="1280x720",
            )
        )
    return studio


def make_account(studio: Studio, running_emulator, *, name: str, concurrency: int):
    """A provider account of the studio's workspace at `running_emulator`."""
    from jobs.models import ProviderAccount
    from jobs.services import account_save

    account = ProviderAccount(
        workspace=studio.workspace,
        name=name,
        kind="openai",
        base_url=running_emulator.api_url,
        model="sora-2",
        concurrency_limit=concurrency,
    )
    return account_save(account=account, api_key="sk-benchmark-0000")


def wait_for_jobs(job_ids: list[int], *, timeout: float) -> list:
    """The jobs once all are terminal; TimeoutError naming the stragglers otherwise."""
    from jobs.models import TERMINAL_STATES, Job

    deadline = time.monotonic() + timeout
    while True:
        jobs = list(Job.objects.filter(pk__in=job_ids).order_by("pk"))
        waiting = [job for job in jobs if job.state not in TERMINAL_STATES]
        if not waiting:
            return jobs
        if time.monotonic() > deadline:
            states = Counter(job.state for job in waiting)
            raise TimeoutError(f"{len(waiting)} jobs not finished after {timeout:.0f} s: {states}")
        time.sleep(0.05)


# --- Reading the emulator's log ---------------------------------------------------------------


def emulator_log(running_emulator) -> list[dict]:
    """Every API call the emulator received (its /_emulator/log control endpoint)."""
    response = httpx.get(f"{running_emulator.url}/_emulator/log", timeout=10)
    response.raise_for_status()
    return response.json()["entries"]


def video_id_of(entry: dict) -> str | None:
    """The video a logged call was about: a create's result, or the id in the path."""
    if entry.get("job_id"):
        return entry["job_id"]
    parts = entry["path"].strip("/").split("/")  # v1, videos, <id>[, content]
    if len(parts) >= 3 and parts[1] == "videos" and parts[2].startswith("video_"):
        return parts[2]
    return None


def requests_per_video(entries: list[dict]) -> dict[str, Counter]:
    """For each video: how many create / retrieve / content calls it cost."""
    per_video: dict[str, Counter] = {}
    for entry in entries:
        video = video_id_of(entry)
        if video is not None and entry["op"] in ("create", "retrieve", "content"):
            per_video.setdefault(video, Counter())[entry["op"]] += 1
    return per_video


def count_ops(entries: list[dict], op: str) -> int:
    return sum(1 for entry in entries if entry["op"] == op)


# --- Printing ---------------------------------------------------------------------------------


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}, "
        f"Python speed {python_speed():.2f} s"
    )


def python_speed() -> float:
    """Seconds of CPU this process takes for a fixed Python loop (10 million steps), the best
    of three: lower is faster. A shared machine's speed drifts (from 0.22 s to 0.39 s within
    an hour on ours), and every figure here moves with it, so runs compare only at like
    speeds."""
    best = math.inf
    for _ in range(3):
        started = time.process_time()
        for _ in range(10_000_000):
            pass
        best = min(best, time.process_time() - started)
    return best


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def verdict(label: str, met: bool, detail: str) -> str:
    return f"  [{'met' if met else 'NOT MET'}] {label}: {detail}"
