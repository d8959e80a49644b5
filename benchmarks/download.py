"""Download benchmark: a 1 GiB result streamed to storage, and the worker's peak memory growth.

One take goes through the real pipeline (Celery worker subprocess, embedded Redis,
OpenAI Videos emulator) while the emulator pads the MP4 with a `free` box of
--size-mib MiB, streamed in 1 MiB chunks (config pad_video_bytes). The pipeline
streams it to a temporary file, probes it, makes its previews and copies it to
storage. A small take runs first, so the pool process has already imported and
initialised everything a download needs before the measured one.

Memory growth is measured two ways and the larger is held against the target:

* kernel peak: for each pool process, VmHWM after the take minus VmRSS before it,
  with VmHWM reset (`5` written to /proc/<pid>/clear_refs) just before the take;
* sampled: the sum of VmRSS over the worker's process tree (celery main + pool) read
  at 20 Hz during the take, peak minus the value at its start.

The stored result and every temporary file are deleted at the end. Exit 0 whatever
the figures; 1 only if the take does not succeed.

    .venv/bin/python benchmarks/download.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup

TARGET_GROWTH_MIB = 64
LATENCY_SECONDS = 1.0
POLL_HINT_MS = 200
WORKER_CONCURRENCY = 1  # one pool process: the one that downloads is the one measured


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mib", type=int, default=1024, help="padding of the result, MiB (1024)"
    )
    return parser.parse_args(argv)


def run_take(scene, account):
    """One take of `scene` at `account`, made through the pipeline; the job once it succeeded."""
    from studio.generation import take_create

    take = take_create(scene=scene, account=account)
    [job] = _setup.wait_for_jobs([take.job_id], timeout=600)
    if job.state != "succeeded":
        raise RuntimeError(f"The take did not succeed: {job.state} {job.error_message}")
    return job


def pad_results(running_emulator, pad_bytes: int) -> None:
    response = httpx.post(
        f"{running_emulator.url}/_emulator/config", json={"pad_video_bytes": pad_bytes}
    )
    response.raise_for_status()


def content_request_time(running_emulator, job) -> float:
    """When the emulator answered the job's content request (headers; the body streams after)."""
    return max(
        entry["time"]
        for entry in _setup.emulator_log(running_emulator)
        if entry["op"] == "content" and _setup.video_id_of(entry) == job.provider_job_id
    )


def delete_results(job) -> None:
    from django.core.files.storage import default_storage

    for field in (job.video, job.thumbnail, job.spritesheet):
        if field.name:
            default_storage.delete(field.name)


def measure_download(bench, studio, account, running, size_bytes: int) -> dict:
    """Pad the next result by `size_bytes`, make one take, and return what was measured."""
    from django.core.files.storage import default_storage

    pad_results(running, size_bytes)
    pool = bench.worker_pool_pids()
    rss_before = {pid: _setup.status_kib(pid, "VmRSS") for pid in pool}
    for pid in pool:
        _setup.reset_peak_rss(pid)
    window = bench.memory.window()
    started = time.time()
    job = run_take(studio.scenes[1], account)
    bench.memory.window()
    try:
        growth = {pid: _setup.status_kib(pid, "VmHWM") - rss_before[pid] for pid in pool}
        content_at = content_request_time(running, job)
        return {
            "bytes": job.result["bytes"],
            "stored_bytes": default_storage.size(job.video.name),
            "wall": job.finished_at.timestamp() - started,
            "download": job.finished_at.timestamp() - content_at,
            "hwm_growth_kib": max(growth.values()),
            "rss_before_kib": max(rss_before.values()),
            "window": window,
            "leftovers": sorted(p.name for p in (bench.run_dir / "tmp").glob("castboard-*")),
        }
    finally:
        delete_results(job)


def print_report(figures: dict, size_mib: int) -> None:
    window = figures["window"]
    size = figures["bytes"]
    print(
        f"  result: {size:,} bytes ({size / _setup.MIB:.1f} MiB; stored copy "
        f"{figures['stored_bytes']:,} bytes)"
    )
    print(
        f"  take created -> stored: {figures['wall']:.2f} s; content request -> stored "
        f"(stream to temp file, probe, previews, copy to storage): {figures['download']:.2f} s "
        f"= {size / _setup.MIB / figures['download']:.0f} MiB/s"
    )
    print(
        f"  pool process peak RSS growth (VmHWM after - VmRSS before, VmHWM reset first): "
        f"{_setup.mib(figures['hwm_growth_kib'])} over {_setup.mib(figures['rss_before_kib'])}"
    )
    print(
        f"  worker process tree, sum of VmRSS sampled at {_setup.SAMPLE_HZ} Hz "
        f"({window.samples} samples, {window.processes} processes): "
        f"{_setup.mib(window.start_sum_kib)} -> peak {_setup.mib(window.peak_sum_kib)} "
        f"(growth {_setup.mib(window.growth_kib)})"
    )
    print(f"  worker temporary files left: {figures['leftovers'] or 0}; stored result deleted")
    growth = max(figures["hwm_growth_kib"], window.growth_kib)
    print("targets:")
    print(
        _setup.verdict(
            f"worker peak memory growth under {TARGET_GROWTH_MIB} MiB for a {size_mib} MiB result",
            growth < TARGET_GROWTH_MIB * 1024,
            f"{_setup.mib(growth)} (the larger of the two measurements)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with _setup.Bench("download", worker_concurrency=WORKER_CONCURRENCY, keep_media=False) as bench:
        print(
            f"Castboard download benchmark: a {args.size_mib} MiB result, Celery prefork "
            f"x{WORKER_CONCURRENCY}; machine: {_setup.machine_load()}"
        )
        studio = _setup.make_studio(scenes=2)
        config = {"latency_seconds": LATENCY_SECONDS, "poll_after_ms": POLL_HINT_MS}
        with _setup.emulator(**config) as running:
            account = _setup.make_account(studio, running, name="Download", concurrency=1)
            delete_results(run_take(studio.scenes[0], account))  # warm-up, not measured
            figures = measure_download(bench, studio, account, running, args.size_mib * _setup.MIB)
        print_report(figures, args.size_mib)
        print(f"  machine after: {_setup.machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
