"""Fault tests: a real worker process killed mid-step, and Redis restarted mid-flight.

Each test runs `celery -A studio worker` as a separate process (tests/support/processes.py)
on the test's database and a real Redis, and plays beat itself by running the sweep from
here, as often as beat would. What is checked is what matters after a crash: every job
still reaches its end, and the provider was asked to create each video exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from django.core.files.storage import default_storage
from kombu.exceptions import OperationalError

from jobs import sweep
from jobs.models import TERMINAL_STATES, Job, JobState, LedgerEntry
from studio.generation import take_create
from studio.project.redis_server import free_port, start_redis
from tests.jobs.factories import build_studio, studio_scene
from tests.support.emulators import emulator_control, emulator_log
from tests.support.processes import WorkerProcess, point_celery_at, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# How often this test plays beat (beat's own period is JOBS_SWEEP_SECONDS, 2 s by default).
SWEEP_EVERY = 0.5
DOWNLOAD_LEASE_SECONDS = 5
# The engine's timings in the worker processes: stale submits after 2 s, short leases.
WORKER_ENV = {
    "JOBS_SUBMIT_STALE_SECONDS": "2",
    "JOBS_RECONCILE_DELAY_SECONDS": "0",
    "JOBS_MIN_POLL_MS": "100",
    "JOBS_PROVIDER_TIMEOUT_SECONDS": "10",
    "JOBS_LEASE_SECONDS": "2",
    "JOBS_DOWNLOAD_LEASE_SECONDS": str(DOWNLOAD_LEASE_SECONDS),
    "JOBS_SWEEP_GRACE_SECONDS": "0",
    "JOBS_BACKOFF_BASE_SECONDS": "1",
    "JOBS_LANE_RECHECK_SECONDS": "2",
}


class Workers:
    """The worker processes one test starts: each logs to its own file; all stop at teardown."""

    def __init__(self, *, redis_url: str, media_root: Path, env: dict[str, str], folder: Path):
        self.redis_url = redis_url
        self.media_root = media_root
        self.env = env
        self.folder = folder
        self.started: list[WorkerProcess] = []
        self.stopped = False

    def start(self, *, redis_url: str | None = None, concurrency: int = 2) -> WorkerProcess:
        worker = WorkerProcess(
            redis_url=redis_url or self.redis_url,
            media_root=self.media_root,
            env=self.env,
            concurrency=concurrency,
            log_path=self.folder / f"worker-{len(self.started) + 1}.log",
        )
        self.started.append(worker)
        return worker.start()

    def supervise(self) -> None:
        """Restart the latest worker if it exited by itself, as a process supervisor would."""
        latest = self.started[-1]
        assert latest.process is not None
        if latest.process.poll() is not None:
            self.start(redis_url=latest.env["REDIS_URL"], concurrency=latest.concurrency)

    def stop_all(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for worker in self.started:
            worker.stop(timeout=10)
            # A worker that died by itself may have left pool children in its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)

    def logs(self) -> str:
        parts = []
        for worker in self.started:
            path = worker.log_path
            text = path.read_text(errors="replace") if path and path.exists() else "(no log)"
            parts.append(
                f"===== {path.name if path else 'worker'} (pid {worker.pid}) =====\n{text}"
            )
        return "\n".join(parts)

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """Print every worker's log when the block fails (pytest shows it with the failure)."""
        try:
            yield
        except BaseException:
            print(self.logs())
            raise


@pytest.fixture
def fault_studio(live_server, settings, fast_engine, openai_emulator):
    """Like the `studio` fixture, without an in-process worker: only the OpenAI emulator."""
    settings.PUBLIC_BASE_URL = live_server.url
    # The sweep runs here: it must judge staleness and leases as the workers do.
    settings.JOBS_SUBMIT_STALE_SECONDS = 2
    settings.JOBS_LEASE_SECONDS = 2
    settings.JOBS_SWEEP_GRACE_SECONDS = 0
    built = build_studio(openai_url=openai_emulator.api_url)
    return {
        "episode": built["episode"],
        "account": built["accounts"]["openai"],
        "openai": openai_emulator,
        "live_server": live_server,
    }


class OwnRedis:
    """A Redis of this test's own on a free loopback port, without snapshots: a restart
    loses every queued and reserved message. Never the machine's or the session's server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server = start_redis(port=self.port, directory=folder, persistent=False)

    def restart(self, *, down_for: float) -> None:
        """Stop the server, keep sweeping while it is down (as beat would), start it again."""
        self.stop()
        up_at = time.monotonic() + down_for
        while time.monotonic() < up_at:
            _sweep(swallow_broker_errors=True)
            time.sleep(SWEEP_EVERY)
        self.server = start_redis(port=self.port, directory=self.folder, persistent=False)

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)


@pytest.fixture
def workers(fault_studio, redis_url, settings, tmp_path) -> Iterator[Workers]:
    crew = Workers(
        redis_url=redis_url,
        media_root=Path(settings.STORAGES["default"]["OPTIONS"]["location"]),
        env={**WORKER_ENV, "PUBLIC_BASE_URL": fault_studio["live_server"].url},
        folder=tmp_path,
    )
    yield crew
    crew.stop_all()


@pytest.fixture
def own_redis(workers, redis_url, tmp_path) -> Iterator[OwnRedis]:
    """Our own Redis, for this process's Celery app too; the session's broker is restored."""
    server = OwnRedis(tmp_path / "redis")
    point_celery_at(server.url)
    yield server
    point_celery_at(redis_url, forget_current=True)
    workers.stop_all()  # before their broker goes away for good
    server.stop()


# --- Helpers ----------------------------------------------------------------------------------


def _take(fault_studio, prompt: str):
    return take_create(scene=studio_scene(fault_studio, prompt), account=fault_studio["account"])


def _sweep(*, swallow_broker_errors: bool = False) -> None:
    try:
        sweep.run()
    except OperationalError:
        # Broker down: beat could not enqueue either; the next run will.
        if not swallow_broker_errors:
            raise


def _sweep_until(
    done: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    broker_may_fail: bool = False,
    tick: Callable[[], None] | None = None,
) -> None:
    """Run the sweep every SWEEP_EVERY seconds, as beat would, until `done()`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout:g} s")
        _sweep(swallow_broker_errors=broker_may_fail)
        if tick is not None:
            tick()
        time.sleep(SWEEP_EVERY)


def _final(*jobs: Job) -> bool:
    for job in jobs:
        job.refresh_from_db()
    return all(job.state in TERMINAL_STATES for job in jobs)


def _decoded_frames(name: str) -> int:
    with default_storage.open(name, "rb") as stored, av.open(stored) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return sum(1 for _ in container.decode(video=0))


def _take_then_kill_inside(fault_studio, workers, op: str, prompt: str, *, hold: float) -> Job:
    """Make a take on a fresh worker, hold its `op` call at the emulator, SIGKILL the worker
    while it is inside that call, and return the job as the crash left it."""
    emulator = fault_studio["openai"]
    emulator_control(
        emulator, "faults", {"faults": [{"op": op, "kind": "timeout", "timeout_seconds": hold}]}
    )
    worker = workers.start()
    job = _take(fault_studio, prompt).job
    wait_until(
        lambda: emulator_log(emulator, op),
        timeout=30,
        message=f"the {op} call never reached the emulator",
    )
    worker.kill()
    job.refresh_from_db()
    return job


# --- Tests ------------------------------------------------------------------------------------


def test_a_worker_killed_inside_the_create_call_is_reconciled_not_sent_again(fault_studio, workers):
    emulator = fault_studio["openai"]
    with workers.reporting():
        # The emulator accepts the create, then holds the connection: the worker is inside it.
        job = _take_then_kill_inside(
            fault_studio, workers, "create", "@mina crosses the harbour at dawn.", hold=5
        )
        # Sent, accepted, never recorded: exactly the crash the reconciler exists for.
        assert (job.state, job.provider_job_id) == (JobState.SUBMITTING, "")
        assert job.sent_payload["prompt"] == "Mina crosses the harbour at dawn."

        workers.start()
        _sweep_until(lambda: _final(job), timeout=40, what="finished")

        assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error_message}"
        creates = emulator_log(emulator, "create")
        assert len(creates) == 1, creates
        assert creates[0].get("dropped") is True  # the one the killed worker sent
        assert job.provider_job_id == creates[0]["job_id"]
        assert _decoded_frames(job.video.name) > 0


def test_a_worker_killed_during_the_download_is_resumed_after_its_lease(fault_studio, workers):
    emulator = fault_studio["openai"]
    with workers.reporting():
        # No beat yet: the first worker must reach the download by itself (submit, polls).
        job = _take_then_kill_inside(
            fault_studio, workers, "content", "Rain on the lighthouse windows.", hold=4
        )
        assert job.state == JobState.DOWNLOADING
        assert not job.video
        lease_until = job.next_poll_at
        assert lease_until is not None

        workers.start()
        _sweep_until(lambda: _final(job), timeout=40, what="finished")

        assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error_message}"
        downloads = emulator_log(emulator, "content")
        assert [d.get("dropped", False) for d in downloads] == [True, False], downloads
        assert downloads[1]["status"] == 200
        # Retried only once the killed worker's lease on the download had run out.
        assert downloads[1]["time"] >= lease_until.timestamp()
        assert len(emulator_log(emulator, "create")) == 1
        assert job.result["codec"] == "h264"
        assert job.result["duration"] == pytest.approx(4, abs=0.3)
        assert _decoded_frames(job.video.name) > 0
        assert default_storage.exists(job.thumbnail.name)
        assert default_storage.exists(job.spritesheet.name)


def test_a_redis_restart_mid_flight_loses_no_job_and_sends_each_create_once(
    fault_studio, workers, own_redis
):
    emulator = fault_studio["openai"]
    emulator_control(emulator, "config", {"latency_seconds": 2.0})
    with workers.reporting():
        workers.start(redis_url=own_redis.url, concurrency=4)
        # Five takes on an account with four lanes: one waits its turn.
        jobs = [_take(fault_studio, f"Shot {n}: gulls over the pier.").job for n in range(5)]
        wait_until(
            lambda: len(emulator_log(emulator, "create")) >= 3,
            timeout=30,
            message="the takes were never sent",
        )
        assert not _final(*jobs), "too late: a job finished before Redis went down"
        own_redis.restart(down_for=1.5)

        # The worker is supervised here as in production (restarted if it ever exits).
        _sweep_until(
            lambda: _final(*jobs),
            timeout=60,
            what="all finished",
            broker_may_fail=True,
            tick=workers.supervise,
        )

        assert [job.state for job in jobs] == [JobState.SUCCEEDED] * 5, [
            (job.pk, job.state, job.error_message) for job in jobs
        ]
        assert Job.objects.count() == 5
        creates = emulator_log(emulator, "create")
        assert len(creates) == len(jobs), creates
        assert {job.provider_job_id for job in jobs} == {c["job_id"] for c in creates}
        assert all(_decoded_frames(job.video.name) > 0 for job in jobs)


def test_a_worker_holding_a_delayed_poll_survives_a_redis_restart(fault_studio, workers, own_redis):
    # Guards the pin in pyproject.toml: under Celery 5.7.0 the worker exits here with
    # "Unrecoverable error: AttributeError('NoneType' object has no attribute 'hostname')"
    # (the connection is collected before the channel restores its unacked messages).
    emulator = fault_studio["openai"]
    # A 3 s generation polled every 4 s: the worker holds the delayed poll when Redis goes.
    emulator_control(emulator, "config", {"latency_seconds": 3.0, "poll_after_ms": 4000})
    with workers.reporting():
        worker = workers.start(redis_url=own_redis.url)
        job = _take(fault_studio, "Fog rolls over the pier.").job
        wait_until(
            lambda: Job.objects.get(pk=job.pk).state in (JobState.QUEUED, JobState.RUNNING),
            timeout=30,
            message="the take was never sent",
        )
        time.sleep(0.5)  # the delayed poll is now reserved by the worker, unacknowledged
        own_redis.restart(down_for=1.0)

        def finished() -> bool:
            assert worker.process is not None
            assert worker.process.poll() is None, "the worker exited when Redis went away"
            return _final(job)

        _sweep_until(finished, timeout=30, what="finished", broker_may_fail=True)
        assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error_message}"
        assert len(emulator_log(emulator, "create")) == 1


def test_a_slot_released_by_a_worker_that_then_dies_still_goes_to_the_next_job(
    fault_studio, workers
):
    """One lane, two takes: the worker that sees the first video done frees the lane (and
    wakes the second job), then dies inside the first one's download. Whether the second
    job's send was already done, still queued, or held by the dead worker, it goes out
    once, without waiting for the first job to end, and each video is made and paid once.
    """
    emulator = fault_studio["openai"]
    account = fault_studio["account"]
    account.concurrency_limit = 1
    account.save(update_fields=["concurrency_limit"])
    # A download lease well past a worker's start, so "before the first job ends" is clear.
    workers.env["JOBS_DOWNLOAD_LEASE_SECONDS"] = "10"
    emulator_control(emulator, "config", {"latency_seconds": 1.0})
    emulator_control(
        emulator, "faults", {"faults": [{"op": "content", "kind": "timeout", "timeout_seconds": 6}]}
    )
    with workers.reporting():
        worker = workers.start(concurrency=1)
        first = _take(fault_studio, "Shot 1: the ferry leaves the pier.").job
        second = _take(fault_studio, "Shot 2: the ferry reaches the island.").job
        wait_until(
            lambda: emulator_log(emulator, "content"),
            timeout=30,
            message="the first video's download never started",
        )
        worker.kill()
        first.refresh_from_db()
        # Its slot was freed (the provider is done with it) before its worker died.
        assert first.state == JobState.DOWNLOADING

        workers.start(concurrency=2)
        _sweep_until(lambda: _final(first, second), timeout=60, what="both finished")

        for job in (first, second):
            assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error_message}"
            charges = job.ledger_entries.filter(kind=LedgerEntry.Kind.CHARGE)
            assert charges.count() == 1
        creates = emulator_log(emulator, "create")
        assert sorted(c["job_id"] for c in creates) == sorted(
            [first.provider_job_id, second.provider_job_id]
        )
        downloads = [d for d in emulator_log(emulator, "content") if not d.get("dropped")]
        resumed = min(d["time"] for d in downloads if first.provider_job_id in d.get("path", ""))
        second_create = next(c["time"] for c in creates if c["job_id"] == second.provider_job_id)
        # The freed slot was used while the first job was still waiting for its download.
        assert second_create < resumed
