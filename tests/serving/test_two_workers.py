"""Two machines' workers make one episode together: the shape of a multi-machine deployment.

Each "machine" is a `celery -A studio worker` process (tests/support/processes.py) with a
local state folder of its own: CASTBOARD_VAR_DIR (beat's schedule, media root) and TMPDIR
(the scratch where downloads are probed and previews made). They share what a deployment
shares: the database, one Redis, one S3 bucket (moto in server mode, tests/support/s3.py) and
the provider (the OpenAI emulator). Machine "a" also runs the deployment's one beat.

Both take every queue (sends and polls, downloads, drift scores). What is checked is what a
deployment needs: every take is made, scored, stored in the bucket and readable by the web;
each video was asked for, downloaded and paid for once; both machines worked, and no task ran
on both; neither touched the other's local files (an audit hook in each worker process
records every file it opens under the machines' folders). A second test SIGKILLs one machine
mid-download: the other (with the beat) finishes the episode, still sending and paying once.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.services import asset_add
from jobs import ledger
from jobs.models import TERMINAL_STATES, Job, JobState, LedgerEntry
from studio.generation import take_create, takes_create
from studio.models import Role, Take, TakeScore
from studio.project.redis_server import free_port, start_redis
from tests.factories import MembershipFactory
from tests.jobs.factories import build_studio, studio_scene
from tests.samples import image_bytes
from tests.support.emulators import emulator_control, emulator_log, emulator_state
from tests.support.processes import WorkerProcess, point_celery_at, wait_until
from tests.support.s3 import S3Server

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SCENES = 10
# The engine's timings in the workers: poll as often as the emulator hints, sweep each second.
WORKER_ENV = {
    "JOBS_MIN_POLL_MS": "100",
    "JOBS_RECONCILE_DELAY_SECONDS": "0",
    "JOBS_SWEEP_GRACE_SECONDS": "0",
    "JOBS_PROVIDER_TIMEOUT_SECONDS": "10",
    "JOBS_LANE_RECHECK_SECONDS": "2",
    "JOBS_SWEEP_SECONDS": "1",
    # A machine that dies: its claims are taken over after these (the sweep runs in a's beat).
    "JOBS_LEASE_SECONDS": "2",
    "JOBS_DOWNLOAD_LEASE_SECONDS": "5",
    "JOBS_SUBMIT_STALE_SECONDS": "2",
}
# Every finished take scored for drift (about a second of CPU each), on the "scores" queue
# both machines consume.
SCORING = {"JOBS_SUCCEEDED_TASKS": "studio.tasks.score_take"}

# Loaded by each worker process at start (sitecustomize on its PYTHONPATH): appends "pid event
# path" to FLEET_AUDIT_LOG for every file opened, folder made or listed under FLEET_AUDIT_ROOT.
AUDIT_HOOK = """
import os
import sys
import threading

_ROOT = os.environ.get("FLEET_AUDIT_ROOT")
_LOG = os.environ.get("FLEET_AUDIT_LOG")
_EVENTS = {"open", "os.mkdir", "os.listdir", "os.scandir", "os.remove", "os.rename"}
_inside = threading.local()


def _audit(event, args):
    if event not in _EVENTS or getattr(_inside, "busy", False) or not args:
        return
    if not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if not path.startswith(_ROOT):
        return
    _inside.busy = True
    try:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {event} {path}\\n".encode())
        finally:
            os.close(fd)
    finally:
        _inside.busy = False


if _ROOT and _LOG:
    sys.addaudithook(_audit)
"""

SUCCEEDED = re.compile(r"Task ((?:jobs|studio)\.tasks\.\w+)\[([0-9a-f-]+)\] succeeded")


@dataclass
class Machine:
    """One worker host: its process and its local state folder."""

    name: str
    home: Path
    worker: WorkerProcess
    audit_log: Path

    @property
    def var(self) -> Path:
        return self.home / "var"

    @property
    def scratch(self) -> Path:
        return self.home / "tmp"

    def log(self) -> str:
        path = self.worker.log_path
        return path.read_text(errors="replace") if path and path.exists() else ""

    def succeeded_tasks(self) -> list[tuple[str, str]]:
        """(task name, task id) of every task this machine's worker finished."""
        return SUCCEEDED.findall(self.log())

    def touched(self) -> list[str]:
        """Every path under the machines' folders this machine's processes used."""
        return [path for _, path in self._audit()]

    def touched_by(self, event: str) -> list[str]:
        """The paths of one audit event ("open", "os.mkdir"...)."""
        return [path for seen, path in self._audit() if seen == event]

    def _audit(self) -> list[tuple[str, str]]:
        if not self.audit_log.exists():
            return []
        entries = []
        for line in self.audit_log.read_text().splitlines():
            _pid, event, path = line.split(" ", 2)
            entries.append((event, path))
        return entries


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3, settings) -> str:
    """The one bucket every process stores media in, this test process (the web) too."""
    name = s3.bucket("castboard-fleet")
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(name)}
    return name


@pytest.fixture
def broker(redis_url, tmp_path) -> Iterator[str]:
    """The deployment's one Redis: this test's own, so no earlier test's messages reach its
    workers and none of theirs outlive it; this process's Celery app sends to it too, and
    goes back to the session's broker afterwards."""
    port = free_port()
    server = start_redis(port=port, directory=tmp_path / "redis", persistent=False)
    url = f"redis://127.0.0.1:{port}/0"
    point_celery_at(url)
    try:
        yield url
    finally:
        point_celery_at(redis_url, forget_current=True)
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def worker_env() -> dict[str, str]:
    """What both machines' workers run with beyond WORKER_ENV (a test parametrizes it)."""
    return {}


@pytest.fixture
def machines(bucket, s3, broker, worker_env, tmp_path) -> Iterator[dict[str, Machine]]:
    """Machines "a" (with the beat) and "b", each worker started and ready."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT_HOOK)
    root = tmp_path / "machines"
    built: dict[str, Machine] = {}
    for name in ("a", "b"):
        home = root / name
        (home / "var").mkdir(parents=True)
        (home / "tmp").mkdir()
        audit_log = tmp_path / f"audit-{name}.log"
        env = {
            **WORKER_ENV,
            **worker_env,
            **s3.env(bucket),
            "CASTBOARD_VAR_DIR": str(home / "var"),
            "TMPDIR": str(home / "tmp"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")])),
            "FLEET_AUDIT_ROOT": str(root),
            "FLEET_AUDIT_LOG": str(audit_log),
        }
        worker = WorkerProcess(
            redis_url=broker,
            media_root=home / "var" / "media",
            env=env,
            name=name,
            log_path=tmp_path / f"worker-{name}.log",
            beat=name == "a",
        )
        built[name] = Machine(name=name, home=home, worker=worker, audit_log=audit_log)
    try:
        for machine in built.values():
            machine.worker.start()
        for machine in built.values():
            wait_until(
                lambda m=machine: " ready." in m.log(),
                timeout=60,
                message=f"worker {machine.name} never became ready",
            )
        yield built
    finally:
        # Both at once: each warm shutdown waits for its tasks, one after the other would
        # double the wait.
        stopping = [
            threading.Thread(target=m.worker.stop, kwargs={"timeout": 10}) for m in built.values()
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        for machine in built.values():
            if machine.worker.process is None:
                continue
            # A worker that died by itself may have left pool children (or beat) behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(machine.worker.pid, signal.SIGKILL)


@contextlib.contextmanager
def logs_on_failure(machines: dict[str, Machine]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for machine in machines.values():
            print(f"===== worker {machine.name} =====\n{machine.log()}")
        raise


def _decoded_frames(name: str) -> int:
    with default_storage.open(name, "rb") as stored, av.open(stored) as container:
        return sum(1 for _ in container.decode(video=0))


def _generate_episode(openai_emulator) -> tuple[dict, list[Job]]:
    """A studio whose character has a portrait and a clip, and a take started for each of
    SCENES scenes mentioning her, through the web's path for "generate all" (one
    transaction, every job sent to the workers on its commit)."""
    studio = build_studio(openai_url=openai_emulator.api_url)
    studio["portrait"] = asset_add(
        character=studio["mina"],
        upload=SimpleUploadedFile("mina.png", image_bytes(), "image/png"),
    )
    scenes = [
        studio_scene(studio, f"Shot {n}: @mina walks the harbour wall.") for n in range(SCENES)
    ]
    takes, refused = takes_create(scenes, lambda scene: take_create(scene=scene))
    assert not refused, refused
    return studio, [take.job for take in takes]


def _wait_until_ended(jobs: list[Job], *, timeout: float) -> None:
    def all_ended() -> bool:
        for job in jobs:
            job.refresh_from_db()
        return all(job.state in TERMINAL_STATES for job in jobs)

    wait_until(all_ended, timeout=timeout, interval=0.5, message="the takes never all ended")
    assert [job.state for job in jobs] == [JobState.SUCCEEDED] * len(jobs), [
        (job.pk, job.state, job.error_message) for job in jobs
    ]


def _job_files(workspace_id: int, jobs: list[Job]) -> list[str]:
    """Each job's video and previews, checked to be under its own names."""
    names = []
    for job in jobs:
        folder = f"workspaces/{workspace_id}/jobs/{job.pk}"
        assert (job.video.name, job.thumbnail.name, job.spritesheet.name) == (
            f"{folder}/video.mp4",
            f"{folder}/thumbnail.jpg",
            f"{folder}/spritesheet.jpg",
        )
        names += [job.video.name, job.thumbnail.name, job.spritesheet.name]
    return names


def _assert_sent_registered_and_paid_once(openai_emulator, jobs: list[Job]) -> None:
    """The provider was asked once for each video; the character was registered once
    although both machines sent scenes with her; each job reserved once, released its
    reservation, and was charged once."""
    creates = emulator_log(openai_emulator, "create")
    assert sorted(c["job_id"] for c in creates) == sorted(j.provider_job_id for j in jobs)
    registrations = [
        entry for entry in emulator_log(openai_emulator, "character") if entry["method"] == "POST"
    ]
    assert len(registrations) == 1, registrations
    for job in jobs:
        kinds = Counter(job.ledger_entries.values_list("kind", flat=True))
        assert kinds == {
            LedgerEntry.Kind.RESERVE: 1,
            LedgerEntry.Kind.RELEASE: 1,
            LedgerEntry.Kind.CHARGE: 1,
        }, (job.pk, kinds)
        assert ledger.reserved(job) == 0
    assert Job.objects.count() == len(jobs)


def _assert_state_kept_apart(machines: dict[str, Machine]) -> None:
    """Beat's schedule is in a's folder only, no media was kept locally (it is all in the
    bucket), and each machine's processes touched only their own folder: their scratch
    files never lived in, nor were read from, the other's."""
    a, b = machines["a"], machines["b"]
    assert list(a.var.glob("celerybeat-schedule*"))
    assert not list(b.var.glob("celerybeat-schedule*"))
    for machine in (a, b):
        media = machine.var / "media"
        assert not media.exists() or not any(media.rglob("*"))
        touched = machine.touched()
        assert touched, f"machine {machine.name} recorded no local files"
        strays = [path for path in touched if not path.startswith(f"{machine.home}/")]
        assert not strays, (machine.name, strays)


def _scratch_downloads(machines: dict[str, Machine]) -> dict[str, list[str]]:
    """The scratch folders each machine made for a download (jobs.pipeline's castboard-*)."""
    return {
        name: [p for p in m.touched_by("os.mkdir") if p.startswith(f"{m.scratch}/castboard-")]
        for name, m in machines.items()
    }


@pytest.mark.parametrize("worker_env", [SCORING], ids=["scoring"])
def test_two_machines_make_an_episode_together_and_nothing_twice(
    machines, s3, bucket, client, openai_emulator
):
    with logs_on_failure(machines):
        studio, jobs = _generate_episode(openai_emulator)
        workspace = studio["workspace"]
        _wait_until_ended(jobs, timeout=90)

        # Every file is in the one bucket, once: the references the web stored, and each
        # job's video and previews under their own names (no copy left by a lost race).
        keys = s3.keys(bucket)
        assert studio["portrait"].file.name in keys
        made = [key for key in keys if key.startswith(f"workspaces/{workspace.pk}/jobs/")]
        assert sorted(made) == sorted(_job_files(workspace.pk, jobs))

        # The web reads what the workers stored: a playable video, and the signed redirect
        # its player follows.
        assert all(_decoded_frames(job.video.name) > 0 for job in jobs)
        client.force_login(MembershipFactory(workspace=workspace, role=Role.OWNER).user)
        take = Take.objects.get(job=jobs[0])
        response = client.get(
            reverse(
                "take_media",
                kwargs={"slug": workspace.slug, "take_id": take.pk, "variant": "video"},
            )
        )
        assert response.status_code == 302
        assert response["Location"].startswith(s3.endpoint_url)
        fetched = httpx.get(response["Location"])
        assert fetched.status_code == 200
        with default_storage.open(jobs[0].video.name, "rb") as stored:
            assert fetched.content == stored.read()

        _assert_sent_registered_and_paid_once(openai_emulator, jobs)
        # Each video was downloaded once, through exactly one machine's scratch.
        downloads = Counter(
            entry["path"].split("/")[-2] for entry in emulator_log(openai_emulator, "content")
        )
        assert downloads == Counter({job.provider_job_id: 1 for job in jobs})
        assert emulator_state(openai_emulator)["counters"]["downloads"] == {"video": SCENES}
        scratch = _scratch_downloads(machines)
        assert len(scratch["a"]) + len(scratch["b"]) == SCENES, scratch

        # Each take was scored, by one of the machines (its claim names the worker).
        def all_scored() -> bool:
            states = TakeScore.objects.values_list("state", flat=True)
            return len(states) == SCENES and TakeScore.State.PENDING not in states

        wait_until(all_scored, timeout=60, interval=0.5, message="the takes were never all scored")
        scores = TakeScore.objects.filter(take__job__in=jobs)
        assert {score.state for score in scores} == {TakeScore.State.SCORED}
        scorers = Counter(score.claimed_by.split("@")[0] for score in scores)
        assert set(scorers) <= {"a", "b"}, scorers
        assert scorers.total() == SCENES

        # Both machines worked, and no task ran on both.
        ran = {name: m.succeeded_tasks() for name, m in machines.items()}
        assert ran["a"], ran
        assert ran["b"], ran
        assert not {i for _, i in ran["a"]} & {i for _, i in ran["b"]}

        _assert_state_kept_apart(machines)


def test_a_machine_killed_mid_episode_leaves_the_other_to_finish_it_once(
    machines, s3, bucket, openai_emulator
):
    # Generations that take a while, so the machine dies with work in hand.
    emulator_control(openai_emulator, "config", {"latency_seconds": 1.5})
    b = machines["b"]
    with logs_on_failure(machines):
        studio, jobs = _generate_episode(openai_emulator)

        # b dies (SIGKILL: no clean-up, its reserved messages never acknowledged) as soon as
        # it starts a download (or, should a take it all first, once half the takes are
        # done); a and its beat must take over all that b had in hand.
        def b_has_work_in_hand() -> bool:
            if _scratch_downloads(machines)["b"]:
                return True
            done = Job.objects.filter(pk__in=[j.pk for j in jobs], state=JobState.SUCCEEDED)
            return done.count() >= SCENES // 2

        wait_until(b_has_work_in_hand, timeout=60, message="the takes never got under way")
        b.worker.kill()
        _wait_until_ended(jobs, timeout=90)

        # Nothing twice all the same: one create per video, one registration, one charge.
        _assert_sent_registered_and_paid_once(openai_emulator, jobs)
        assert all(_decoded_frames(job.video.name) > 0 for job in jobs)
        workspace_id = studio["workspace"].pk
        recorded = set(_job_files(workspace_id, jobs))
        made = {key for key in s3.keys(bucket) if key.startswith(f"workspaces/{workspace_id}/")}
        assert recorded <= made
        # A process killed after storing a result and before recording it leaves its copy
        # unreferenced (at most one job's files per process of b's pool); nothing else extra.
        extra = {key for key in made - recorded if "/jobs/" in key}
        assert len(extra) <= 3 * b.worker.concurrency, extra
        # Only the bytes b was fetching when it died are fetched again: at most one download
        # per process of its pool.
        fetched = [
            entry
            for entry in emulator_log(openai_emulator, "content")
            if entry["status"] == 200 and not entry.get("dropped")
        ]
        assert SCENES <= len(fetched) <= SCENES + b.worker.concurrency, fetched
        assert {e["path"].split("/")[-2] for e in fetched} == {j.provider_job_id for j in jobs}
        # Every video b did not fetch went through a's scratch.
        scratch = _scratch_downloads(machines)
        assert len(scratch["a"]) >= SCENES - len(scratch["b"]), scratch
        _assert_state_kept_apart(machines)
