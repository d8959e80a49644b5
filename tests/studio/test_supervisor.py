"""`make run`'s supervisor, run as a real process on real Procfiles: restarts, give-ups, stops."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shelve
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from jobs import sweep
from jobs.models import JobState
from jobs.services import job_create
from jobs.sweep import RoutineTaskLines
from studio.project.redis_server import free_port
from tests.jobs.factories import ProviderAccountFactory, job_request

ROOT = Path(__file__).resolve().parents[2]

# One-line scripts (a Procfile line is one line); each appends its pid to the file named
# by its first argument every time it starts.
RECORD = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n')"
FLAKY = (
    f"{RECORD}; print('flaky is failing on purpose', file=sys.stderr, flush=True);"
    " time.sleep(0.5); sys.exit(1)"
)
STEADY = (
    f"{RECORD}; open(sys.argv[2], 'w').write(os.environ.get('CASTBOARD_PROBE', 'unset'));"
    " time.sleep(3600)"
)
ONCE = f"{RECORD}; print('hello once', flush=True)"
SLEEPER = "[sys.executable, '-c', 'import time; time.sleep(3600)']"
# Ignores SIGTERM and has a child of its own: only SIGKILL to its whole group ends both.
STUBBORN = (
    f"{RECORD}; import signal, subprocess; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    f" child = subprocess.Popen({SLEEPER});"
    " open(sys.argv[1], 'a').write(f'{child.pid}\\n'); time.sleep(3600)"
)
# Starts a child and exits without it: what a Celery main process leaves when it dies.
LEAVER = (
    f"{RECORD}; import subprocess; child = subprocess.Popen({SLEEPER});"
    " open(sys.argv[2], 'a').write(f'{child.pid}\\n'); time.sleep(0.3); sys.exit(1)"
)


def line(name: str, script: str, *args: Path) -> str:
    words = [sys.executable, "-c", script, *map(str, args)]
    return f"{name}: {' '.join(shlex.quote(word) for word in words)}"


def pids(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) from /proc, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    found = stat(pid)
    return found is not None and found[0] not in ("Z", "X")  # an unreaped orphan is gone too


def members_of(groups: set[int]) -> list[int]:
    """Live processes in any of these process groups."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = stat(int(entry.name))
            if info and info[2] in groups and info[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


class RunningSupervisor:
    def __init__(
        self, procfile: Path, args: list[str], *, cwd: Path, env: dict[str, str], log_path: Path
    ):
        self.log_path = log_path
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            [sys.executable, "-m", "studio.project.supervisor", str(procfile), *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def until(self, condition: Callable[[], bool], *, timeout: float = 10, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the supervisor exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what or 'the condition'} not met in {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 10) -> None:
        self.until(
            lambda: len(re.findall(pattern, self.output())) >= count,
            timeout=timeout,
            what=f"{pattern!r} x{count} in the output",
        )

    def pid_of(self, name: str, *, nth: int = 0) -> int:
        found = re.findall(rf"\| {name} (?:started|restarted) \(pid (\d+)\)", self.output())
        return int(found[nth])

    def groups(self) -> set[int]:
        return {
            int(pid) for pid in re.findall(r"(?:started|restarted) \(pid (\d+)\)", self.output())
        }

    def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 15) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor did not exit within {timeout} s:\n{self.output()}")

    def clean_up(self) -> None:
        """After a failed test: kill the supervisor and the groups it still leads."""
        if self.process.poll() is None:
            ours = {
                pid for pid in self.groups() if (info := stat(pid)) and info[1] == self.process.pid
            }
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            for pgid in ours:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., RunningSupervisor]]:
    started: list[RunningSupervisor] = []

    def start(
        procfile: str | Path, *args: str, cwd: Path = tmp_path, env: dict[str, str] | None = None
    ) -> RunningSupervisor:
        if isinstance(procfile, str):
            path = tmp_path / "Procfile"
            path.write_text(procfile)
            procfile = path
        # No .env of the machine's: the test decides the whole environment.
        options = ["--no-colour", "--env-file", str(tmp_path / "no.env"), *args]
        running = RunningSupervisor(
            procfile, options, cwd=cwd, env=env or {}, log_path=tmp_path / "supervisor.log"
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.clean_up()


FAST = ["--backoff", "0.2", "--max-backoff", "0.4"]


def test_it_restarts_a_process_that_exits_and_leaves_the_others_alone(supervise, tmp_path):
    flaky, steady, hello = tmp_path / "flaky", tmp_path / "steady", tmp_path / "hello"
    probe = tmp_path / "probe"
    running = supervise(
        "# supervisor: once hello\n"
        + "\n".join(
            [
                line("flaky", FLAKY, flaky),
                line("steady", STEADY, steady, probe),
                line("hello", ONCE, hello),
            ]
        ),
        *FAST,
        "--give-up-after",
        "10",
        env={"CASTBOARD_PROBE": "from the environment"},
    )
    running.until(lambda: len(pids(flaky)) >= 3, what="three runs of flaky")
    output = running.output()

    assert "flaky exited with code 1 after" in output
    # The backoff grows while it keeps failing.
    assert "restarting in 0.2 s (restart 1)" in output
    assert "restarting in 0.4 s (restart 2)" in output
    assert "flaky is failing on purpose" in output
    assert len(set(pids(flaky))) == len(pids(flaky))
    # The long-running one was never touched, and saw the environment as given.
    assert len(pids(steady)) == 1
    assert alive(pids(steady)[0])
    assert probe.read_text() == "from the environment"
    # The one-shot one ran once and was not restarted for exiting.
    assert len(pids(hello)) == 1
    assert "hello once" in output
    assert "hello exited with code 0 after" in output
    assert "(it runs once: not restarted)" in output
    assert "hello restarted" not in output

    assert running.stop() == 0
    assert not any(alive(pid) for pid in pids(flaky) + pids(steady))


def test_it_gives_up_on_a_crash_loop_and_keeps_the_others_running(supervise, tmp_path):
    flaky, steady = tmp_path / "flaky", tmp_path / "steady"
    running = supervise(
        f"{line('flaky', FLAKY, flaky)}\n{line('steady', STEADY, steady, tmp_path / 'probe')}\n",
        "--backoff",
        "0.1",
        "--max-backoff",
        "0.1",
        "--give-up-after",
        "2",
    )
    running.wait_for("giving up on flaky")
    output = running.output()

    assert "the other processes keep running" in output
    assert "flaky's last" in output
    assert "> flaky is failing on purpose" in output
    assert "What to check" in output
    assert len(pids(flaky)) == 3  # the first run and its two restarts
    time.sleep(1)  # ten backoffs: a restart now would show
    assert len(pids(flaky)) == 3
    assert running.process.poll() is None
    assert len(pids(steady)) == 1
    assert alive(pids(steady)[0])
    assert running.stop() == 0


def test_its_env_file_sets_variables_as_honcho_did(supervise, tmp_path):
    steady, probe, env_file = tmp_path / "steady", tmp_path / "probe", tmp_path / ".env"
    env_file.write_text("# the demo's own settings\nexport CASTBOARD_PROBE='from the file'\n")
    running = supervise(
        line("steady", STEADY, steady, probe) + "\n",
        "--env-file",
        str(env_file),
        env={"CASTBOARD_PROBE": "from the environment"},
    )
    running.until(lambda: probe.exists() and probe.read_text() != "", what="the probe")

    assert probe.read_text() == "from the file"
    assert "Read 1 variable from" in running.output()
    assert running.stop() == 0


def test_sigterm_stops_every_process_and_what_they_started(supervise, tmp_path):
    steady, stubborn = tmp_path / "steady", tmp_path / "stubborn"
    running = supervise(
        f"{line('steady', STEADY, steady, tmp_path / 'probe')}\n"
        f"{line('stubborn', STUBBORN, stubborn)}\n",
        "--stop-timeout",
        "1",
    )
    running.until(lambda: len(pids(steady)) == 1 and len(pids(stubborn)) == 2)
    everyone = pids(steady) + pids(stubborn)  # stubborn's child too
    assert all(alive(pid) for pid in everyone)

    assert running.stop(signal.SIGTERM) == 0

    assert not [pid for pid in everyone if alive(pid)], running.output()
    assert not members_of(running.groups())
    output = running.output()
    assert "SIGTERM received: stopping every process" in output
    assert "stubborn did not stop within 1 s: killing (SIGKILL)" in output
    assert "Every process has stopped." in output


def test_a_second_ctrl_c_kills_at_once(supervise, tmp_path):
    stubborn = tmp_path / "stubborn"
    running = supervise(line("stubborn", STUBBORN, stubborn) + "\n", "--stop-timeout", "600")
    running.until(lambda: len(pids(stubborn)) == 2)

    running.process.send_signal(signal.SIGINT)
    running.wait_for("Ctrl-C: stopping every process")
    assert alive(pids(stubborn)[0])  # it ignores SIGTERM: the first Ctrl-C waits for it

    assert running.stop(signal.SIGINT, timeout=10) == 0  # long before the 600 s timeout
    assert not [pid for pid in pids(stubborn) if alive(pid)]
    assert "Killing stubborn now." in running.output()


def test_what_an_exited_process_left_running_is_stopped_before_it_restarts(supervise, tmp_path):
    leaver, children = tmp_path / "leaver", tmp_path / "children"
    running = supervise(line("leaver", LEAVER, leaver, children) + "\n", *FAST)
    running.until(lambda: len(pids(leaver)) >= 2, what="a restart of leaver")
    first_child = pids(children)[0]

    running.until(lambda: not alive(first_child), timeout=5, what="the first run's child gone")
    assert running.stop() == 0
    assert not [pid for pid in pids(children) if alive(pid)]


def test_a_procfile_with_a_mistake_is_refused_before_anything_starts(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("# supervisor: once annnounce\nannounce: echo hi\n")
    command = [sys.executable, "-m", "studio.project.supervisor", str(procfile)]

    def run(*names: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own module, fixed argv
            [*command, *names], cwd=ROOT, capture_output=True, text=True, timeout=30
        )

    refused = run()
    assert refused.returncode == 2
    assert "names no such process: annnounce" in refused.stderr

    procfile.write_text("announce: echo hi\n")
    refused = run("web")
    assert refused.returncode == 2
    assert "no process named web in the Procfile (it has announce)" in refused.stderr


def test_a_killed_celery_worker_is_restarted_while_redis_keeps_running(supervise, tmp_path):
    port = free_port()
    running = supervise(
        ROOT / "Procfile",
        "--backoff",
        "0.2",
        "redis",
        "worker",
        cwd=ROOT,
        env={
            "EMBEDDED_REDIS_PORT": str(port),
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'castboard.sqlite3'}",
            "CASTBOARD_VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
        },
    )
    running.wait_for(r"worker\s+\|.* ready\.", timeout=40)
    redis_pid, worker_pid = running.pid_of("redis"), running.pid_of("worker")

    os.kill(worker_pid, signal.SIGKILL)  # the worker's main process, as an OOM kill would
    running.wait_for("worker was killed by SIGKILL after .*; restarting in 0.2 s", timeout=10)
    running.wait_for(r"worker\s+\|.* ready\.", count=2, timeout=40)

    output = running.output()
    assert running.pid_of("worker", nth=1) != worker_pid
    assert "redis restarted" not in output
    assert alive(redis_pid)
    client = redis.Redis(port=port)
    assert client.ping()
    client.close()

    assert running.stop() == 0
    assert not members_of(running.groups()), running.output()
    with socket.socket() as probe:  # the next `make run` finds its port free (as Redis binds it)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


# --- `make run`'s banner and what the sweep logs ------------------------------------------


def test_the_banner_waits_for_web_emulators_and_workers_and_the_sweep_stays_quiet(
    supervise, tmp_path
):
    redis_port, web_port, emulator_port = free_port(), free_port(), free_port()
    env = {
        "EMBEDDED_REDIS_PORT": str(redis_port),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'castboard.sqlite3'}",
        "CASTBOARD_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "EMULATOR_SEEDANCE_URL": f"http://127.0.0.1:{emulator_port}/api/v3",
        "JOBS_SWEEP_SECONDS": "1",
    }
    python = shlex.quote(sys.executable)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = tmp_path / "site"
    (site / "login").mkdir(parents=True)
    (site / "login" / "index.html").write_text("<p>Log in</p>")
    real = {
        name: command
        for name, command in (
            raw.split(":", 1)
            for raw in (ROOT / "Procfile").read_text().splitlines()
            if raw and not raw.startswith("#")
        )
        if name in ("redis", "worker", "beat")
    }
    procfile = "\n".join(
        [
            "# supervisor: once announce",
            *(f"{name}:{command}" for name, command in real.items()),
            # The emulator comes up last, 3 s late: the banner must wait for it too.
            f"emulators: sleep 3; exec {python} manage.py run_emulators --only seedance"
            f" --port seedance={emulator_port} --latency 0",
            f"web: {python} -m http.server {web_port} --bind 127.0.0.1 --directory {site}",
            f"announce: {python} manage.py announce --url http://127.0.0.1:{web_port}/"
            " --emulators seedance --workers worker",
        ]
    )
    (tmp_path / "Procfile").write_text(procfile + "\n")
    running = supervise(tmp_path / "Procfile", cwd=ROOT, env=env)

    running.wait_for("Castboard is ready at", timeout=60)
    running.wait_for(r"announce\s+\| .*Ctrl-C stops everything", timeout=5)
    time.sleep(4)  # beat sends sweep-jobs every second meanwhile
    output = running.output()

    banner = output.index("Castboard is ready at")
    assert output.index("seedance emulator: http") < banner
    assert re.search(r"worker\s+\|.* ready\.", output[:banner])
    assert f"Castboard is ready at http://127.0.0.1:{web_port}/" in output
    assert re.search(r"everything answered in [\d.]+ s: web, 1 emulator, 1 worker\)", output), (
        output
    )
    # Timed from the supervisor's start: longer than the emulator's 3 s delay.
    answered = float(re.search(r"everything answered in ([\d.]+) s", output).group(1))
    assert answered >= 3
    assert "Log in as demo / " in output
    # Routine sweeps that found nothing leave no lines behind the banner.
    after = output[banner:]
    assert "Sending due task" not in after
    assert "jobs.tasks.sweep_jobs[" not in after
    assert "Sweep: nothing due" not in after
    assert running.stop() == 0
    # And yet beat did send them: its schedule counts the runs.
    schedule_file = str(tmp_path / "var" / "celerybeat-schedule")
    with shelve.open(schedule_file) as schedule:  # noqa: S301 - beat's own file, written here
        assert schedule["entries"]["sweep-jobs"].total_run_count >= 3


@pytest.mark.django_db
def test_a_sweep_that_does_something_logs_it_at_info_and_one_that_finds_nothing_at_debug(
    caplog,
):
    caplog.set_level("DEBUG", logger="jobs.sweep")
    sweep.run()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "Sweep: nothing due.")
    ]

    caplog.clear()
    account = ProviderAccountFactory()
    job = job_create(
        workspace=account.workspace,
        account=account,
        request=job_request("A harbour", seconds=8),
        cost_estimate=1,
        budget_scope="series:1",
    )
    job.move(JobState.SUCCEEDED, cost_actual=1)  # ended without being settled
    sweep.run()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Sweep sent what was due: settle 1.")
    ]


def test_celerys_lines_about_routine_beat_tasks_show_only_at_debug():
    def line(logger: str, task: str, level: int = logging.INFO) -> logging.LogRecord:
        if logger == "celery.beat":
            return logging.LogRecord(
                logger, level, __file__, 1, "Sending due task %s (%s)", ("x", task), None
            )
        record = logging.LogRecord(logger, level, __file__, 1, "Task %(name)s", None, None)
        record.data = {"name": task}
        return record

    routine = RoutineTaskLines()
    beat, trace = logging.getLogger("celery.beat"), logging.getLogger("celery.app.trace")
    levels = beat.level, trace.level
    try:
        beat.setLevel(logging.INFO)
        trace.setLevel(logging.INFO)
        assert not routine.filter(line("celery.beat", "jobs.tasks.sweep_jobs"))
        assert not routine.filter(line("celery.app.trace", "studio.tasks.sweep_cuts"))
        # Work somebody asked for, and any warning, still show.
        assert routine.filter(line("celery.app.trace", "jobs.tasks.submit_job"))
        assert routine.filter(line("celery.app.trace", "jobs.tasks.sweep_jobs", logging.ERROR))

        trace.setLevel(logging.DEBUG)
        shown = line("celery.app.trace", "jobs.tasks.sweep_jobs")
        assert routine.filter(shown)
        assert shown.levelname == "DEBUG"
    finally:
        beat.setLevel(levels[0])
        trace.setLevel(levels[1])
