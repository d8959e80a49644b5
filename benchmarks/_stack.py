"""The production stack as separate processes on loopback, for benchmarks/load.py.

Each process runs in its own process group (session), so stopping it reaches its
children too (gunicorn's and Celery's workers): SIGTERM to the leader, which stops its
own children, then SIGKILL to the whole group. `Stack` is a context manager: leaving it
(an error, Ctrl-C, or SIGTERM turned into KeyboardInterrupt by `_setup.run_main`) stops
everything it started, newest first. Logs go to the run directory, one file per process.

The layout is Procfile.serve's (`make serve`), and the web server may be swapped:

* the OpenAI Videos emulator (`manage.py run_emulators --only openai`) on a free port;
* Celery workers as the Procfile names them: sends and polls ("celery"), downloads
  ("media"), drift scores ("scores"), and Celery beat (its sweep);
* the web server under test: gunicorn (`studio/project/gunicorn.conf.py` when it exists,
  else the same shape as command-line flags) or `manage.py runserver --noreload`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path

from benchmarks._setup import ROOT

GUNICORN_CONFIG = ROOT / "studio" / "project" / "gunicorn.conf.py"
# Until the config file exists: threaded workers, as the first measurement used.
GUNICORN_FLAGS = ["-k", "gthread", "--workers", "3", "--threads", "16"]
# (name, queues, concurrency): the Procfile's workers.
PROCFILE_WORKERS = (("worker", "celery", 2), ("media", "media", 2), ("scores", "scores", 1))


class Process:
    """One subprocess in its own session, its output in `log_path`."""

    def __init__(self, name: str, argv: list[str], *, log_path: Path, env: dict) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own commands, fixed argv
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_for_port(self, port: int, timeout: float = 90.0) -> None:
        self._wait(lambda: _listening(port), f"port {port}", timeout)

    def wait_for_log(self, text: bytes, timeout: float = 90.0) -> None:
        self._wait(lambda: text in self.log_path.read_bytes(), repr(text), timeout)

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not reach {what}; see {self.log_path}")
            time.sleep(0.1)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the leader (gunicorn's master and Celery stop their own children, a
        warm shutdown), then SIGKILL to the whole group: nothing it started outlives it."""
        if self.popen is None:
            return
        with suppress(ProcessLookupError):
            self.popen.terminate()
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        self.popen = None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    """Emulator, workers, beat and one web server; stopped in reverse order on exit."""

    def __init__(
        self,
        run_dir: Path,
        *,
        server: str,
        web_port: int,
        emulator_port: int,
        emulator_latency: float,
        env: dict | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.server = server
        self.web_port = web_port
        self.emulator_port = emulator_port
        self.emulator_latency = emulator_latency
        self.env = {**os.environ, **(env or {})}
        self.processes: list[Process] = []
        self.server_note = ""
        self._stack = ExitStack()

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, log_path=self.run_dir / f"{name}.log", env=self.env)
        process.start()
        self._stack.callback(process.stop)
        self.processes.append(process)
        return process

    def _start(self) -> None:
        python, manage = sys.executable, str(ROOT / "manage.py")
        celery = [python, "-m", "celery", "-A", "studio"]
        emulators = self._spawn(
            "emulators",
            [
                python,
                manage,
                "run_emulators",
                "--only",
                "openai",
                "--port",
                f"openai={self.emulator_port}",
                "--latency",
                f"{self.emulator_latency:g}",
            ],
        )
        workers = [
            self._spawn(
                name,
                [
                    *celery,
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(concurrency),
                    "--queues",
                    queues,
                    "--hostname",
                    f"{name}@%h",
                ],
            )
            for name, queues, concurrency in PROCFILE_WORKERS
        ]
        self._spawn(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.run_dir / "celerybeat-schedule"),
            ],
        )
        self.web = self._spawn(self.server, self._web_argv(python, manage))
        emulators.wait_for_port(self.emulator_port)
        for worker in workers:
            worker.wait_for_log(b" ready.")
        self.web.wait_for_port(self.web_port)

    def _web_argv(self, python: str, manage: str) -> list[str]:
        bind = f"127.0.0.1:{self.web_port}"
        if self.server == "runserver":
            self.server_note = "manage.py runserver --noreload (what `make run` serves with)"
            return [python, manage, "runserver", bind, "--noreload"]
        if self.server != "gunicorn":
            raise SystemExit(f"Unknown server {self.server!r}: gunicorn or runserver.")
        gunicorn = [python, "-m", "gunicorn"]
        if GUNICORN_CONFIG.exists():
            self.server_note = f"gunicorn -c {GUNICORN_CONFIG.relative_to(ROOT)}"
            self.env["WEB_BIND"] = bind  # the config's own setting for the address
            return [*gunicorn, "-c", str(GUNICORN_CONFIG), "studio.project.wsgi"]
        self.server_note = f"gunicorn {' '.join(GUNICORN_FLAGS)} (no {GUNICORN_CONFIG.name} yet)"
        return [*gunicorn, "--bind", bind, *GUNICORN_FLAGS, "studio.project.wsgi"]

    def web_pids(self) -> list[int]:
        """The web server's process group: its master and workers."""
        return group_pids(self.web.pid)


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` so far (their live threads; children not reaped)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
