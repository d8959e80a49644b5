"""Recovery after a worker is killed with SIGKILL mid-step: how long until the take is done,
and whether anything was sent or paid twice.

Each trial makes one take on a real `celery -A studio worker` (prefork) against the OpenAI
emulator, holds one of the take's provider calls at the emulator, and SIGKILLs either the
whole worker (main process and pool: a machine or container lost; a supervisor starts a new
worker at once) or only the pool process running the step (the OOM killer's way: Celery
requeues the delivery). It then times kill -> take finished, counts the creates the
emulator received for it and the charges in the ledger. Run it with the engine's own
defaults (the send lease is the provider timeout plus JOBS_SUBMIT_STALE_SECONDS; the
download lease JOBS_DOWNLOAD_LEASE_SECONDS, renewed while bytes arrive).

    .venv/bin/python benchmarks/recovery.py [--trials 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _setup

# (name, the held call, whole worker or its pool process only, a character on the path)
SCENARIOS = [
    ("worker killed before the create (registering a character)", "character", "worker", True),
    ("worker killed inside the create", "create", "worker", False),
    ("worker killed inside the download", "content", "worker", False),
    ("pool process killed inside the create", "create", "child", False),
    ("pool process killed inside the download", "content", "child", False),
]
HOLD_SECONDS = 120  # longer than any recovery: the held call never answers in time


def _control(emulator, what: str, body: dict) -> None:
    httpx.post(f"{emulator.url}/_emulator/{what}", json=body, timeout=10).raise_for_status()


def _entries(emulator, op: str) -> list[dict]:
    return [entry for entry in _setup.emulator_log(emulator) if entry["op"] == op]


def trial(bench, emulator, studio, account, *, op: str, target: str, character: bool, n: int):
    from jobs.models import Job, LedgerEntry
    from studio.generation import take_create
    from studio.models import Scene

    _control(emulator, "reset", {})
    _control(emulator, "config", {"latency_seconds": 1.0, "poll_after_ms": 200})
    _control(
        emulator,
        "faults",
        {"faults": [{"op": op, "kind": "timeout", "timeout_seconds": HOLD_SECONDS}]},
    )
    from jobs.models import Registration

    Registration.objects.all().delete()  # every trial registers its character afresh
    mention = "@mina " if character else ""
    scene = Scene.objects.create(
        episode=studio.episode,
        position=1000 + n,
        title=f"Trial {n}",
        prompt=f"{mention}Trial {n}: lanterns along the quay.",
        duration=4,
        size="1280x720",
    )
    job = take_create(scene=scene, account=account).job
    deadline = time.monotonic() + 60
    while not _entries(emulator, op):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {op} call never reached the emulator")
        time.sleep(0.05)
    time.sleep(0.2)  # inside the call now
    if target == "worker":
        bench.worker.kill()
        killed_at = time.monotonic()
        bench.worker = _setup.start_worker(
            bench.run_dir, redis_url=bench.redis_url, concurrency=bench.worker_concurrency
        )
    else:
        busy = _talking_to(emulator.port, bench.worker_pool_pids())
        if len(busy) != 1:
            raise RuntimeError(f"expected one pool process inside the call, found {busy}")
        os.kill(busy[0], signal.SIGKILL)
        killed_at = time.monotonic()
    _setup.wait_for_jobs([job.pk], timeout=600)
    seconds = time.monotonic() - killed_at
    job = Job.objects.get(pk=job.pk)
    creates = len(_entries(emulator, "create"))
    charges = LedgerEntry.objects.filter(job=job, kind=LedgerEntry.Kind.CHARGE).count()
    return seconds, job.state, creates, charges


def _talking_to(port: int, pids: list[int]) -> list[int]:
    """The processes among `pids` with a TCP connection open to `port` (the held call)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    talking = []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link[8:-1] in inodes for link in links if link.startswith("socket:[")):
            talking.append(pid)
    return talking


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="trials per scenario (default 3)")
    args = parser.parse_args()
    with _setup.Bench("recovery", worker_concurrency=2, keep_media=False) as bench:
        from django.conf import settings

        with _setup.emulator(latency_seconds=1.0) as running:
            studio = _setup.make_studio(scenes=0)
            account = _setup.make_account(studio, running, name="OpenAI", concurrency=4)
            send_lease = settings.JOBS_PROVIDER_TIMEOUT_SECONDS + settings.JOBS_SUBMIT_STALE_SECONDS
            print(
                f"Send lease {send_lease} s (provider timeout "
                f"{settings.JOBS_PROVIDER_TIMEOUT_SECONDS} s + JOBS_SUBMIT_STALE_SECONDS "
                f"{settings.JOBS_SUBMIT_STALE_SECONDS} s); download lease "
                f"{settings.JOBS_DOWNLOAD_LEASE_SECONDS} s; sweep every "
                f"{_setup.SWEEP_SECONDS:g} s; {_setup.machine_load()}."
            )
            print(f"{'scenario':58} {'kill -> done (s)':>22}  outcome")
            n = 0
            for name, op, target, character in SCENARIOS:
                times, outcomes = [], set()
                for _ in range(args.trials):
                    n += 1
                    seconds, state, creates, charges = trial(
                        bench,
                        running,
                        studio,
                        account,
                        op=op,
                        target=target,
                        character=character,
                        n=n,
                    )
                    times.append(seconds)
                    outcomes.add(f"{state}, {creates} create(s), {charges} charge(s)")
                spread = f"{min(times):.1f}-{max(times):.1f}, median {statistics.median(times):.1f}"
                print(f"{name:58} {spread:>22}  {'; '.join(sorted(outcomes))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
