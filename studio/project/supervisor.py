"""`make run`'s process supervisor: runs a Procfile and restarts whatever exits.

    python -m studio.project.supervisor Procfile [NAME ...]

Every Procfile line runs under `/bin/sh -c` in its own process group, its output
prefixed by a timestamp and its coloured, aligned name. A process that exits (with
any code) is restarted after a backoff that doubles on a crash loop (1 s, 2 s, 4 s...
up to 30 s, back to 1 s once it has stayed up 60 s); one that exits again after 5
restarts within a minute is given up, with its last lines, while the others keep
running. A line named in a `# supervisor: once NAME ...` comment runs once and is
never restarted. Ctrl-C or SIGTERM sends SIGTERM to every group, SIGKILL to those
still there after 10 s, and exits 0; a second Ctrl-C kills them at once.

The environment passes through unchanged, except that a `.env` file in the working
directory is read first, as honcho did (its assignments win over the environment), and
CASTBOARD_STARTED_AT tells every process when the supervisor started (Unix time), so
`announce` can say how long the whole stack took to answer.
Needs neither Django settings nor a database: only the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

SUPERVISOR = "supervisor"
LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
ONCE = re.compile(r"^#\s*supervisor:\s*once\b(.*)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELL_OPERATORS = set("();<>|&")
SHELL_WORDS = {"if", "for", "while", "until", "case", "{", "!", "exec", "time", "[[", "function"}
# honcho's palette: cyan, yellow, green, magenta, red, blue, then their bright variants.
COLOURS = ("36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94")
TAIL_LINES = 15
STARTED_AT = "CASTBOARD_STARTED_AT"


class ProcfileError(Exception):
    """A Procfile (or a process name asked for) that cannot be run as written."""


@dataclass(frozen=True)
class ProcessType:
    name: str
    command: str
    once: bool = False


@dataclass(frozen=True)
class Policy:
    backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 60.0
    give_up_after: int = 5
    give_up_window: float = 60.0
    stop_timeout: float = 10.0
    # How long what a finished process left in its group gets after SIGTERM.
    leftover_grace: float = 2.0


@dataclass
class Run:
    popen: subprocess.Popen
    started_at: float
    reader: threading.Thread | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Supervised:
    spec: ProcessType
    backoff: float
    run: Run | None = None
    last_pgid: int | None = None
    restart_at: float | None = None
    restarts: int = 0
    recent_exits: deque[float] = field(default_factory=deque)
    given_up: bool = False
    finished: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


def parse_procfile(text: str) -> list[ProcessType]:
    """The Procfile's lines in order; `# supervisor: once NAME ...` marks one-shot ones."""
    commands: dict[str, str] = {}
    once: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            directive = ONCE.match(line)
            if directive:
                once += directive.group(1).split()
            continue
        match = LINE.match(line)
        if not match:
            raise ProcfileError(f"line {number} is not `name: command`: {raw!r}")
        name, command = match.groups()
        if name in commands:
            raise ProcfileError(f"line {number}: {name!r} is defined twice")
        commands[name] = command.strip()
    unknown = [name for name in once if name not in commands]
    if unknown:
        raise ProcfileError(f"`supervisor: once` names no such process: {', '.join(unknown)}")
    return [ProcessType(name, command, once=name in once) for name, command in commands.items()]


def select_processes(types: Sequence[ProcessType], names: Sequence[str]) -> list[ProcessType]:
    if not names:
        return list(types)
    by_name = {process.name: process for process in types}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ProcfileError(
            f"no process named {', '.join(missing)} in the Procfile "
            f"(it has {', '.join(by_name) or 'none'})"
        )
    return [by_name[name] for name in dict.fromkeys(names)]


def shell_line(command: str) -> str:
    """The line for `sh -c`: a single command is exec'd, so it gets our signals and its pid
    is the one we report; pipelines, lists and leading assignments are left to the shell."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return command
    if not words or words[0] in SHELL_WORDS or ASSIGNMENT.match(words[0]):
        return command
    if "`" in command or "$(" in command or any(set(word) <= SHELL_OPERATORS for word in words):
        return command
    return f"exec {command}"


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (optionally `export KEY=value`, values shell-quoted or not)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            continue
        try:
            values[key.strip()] = " ".join(shlex.split(value, comments=True))
        except ValueError:
            values[key.strip()] = value.strip()
    return values


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def exit_description(code: int) -> str:
    if code > 128:
        # A shell reports a child killed by signal N as 128 + N.
        try:
            return f"exited with code {code} ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Orphans that nobody has reaped yet still answer kill(); /proc tells them apart.
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Printer:
    """One output for everyone: `HH:MM:SS name | line`, names aligned, each in its colour."""

    def __init__(self, names: Iterable[str], *, colour: bool, out: IO[str] = sys.stdout):
        names = list(names)
        self.width = max(len(name) for name in [*names, SUPERVISOR])
        self.colours = {name: COLOURS[index % len(COLOURS)] for index, name in enumerate(names)}
        self.colours[SUPERVISOR] = "1"
        self.colour = colour
        self.out = out
        self.lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        prefix = f"{datetime.now():%H:%M:%S} {name:<{self.width}} | "
        if self.colour:
            prefix = f"\033[{self.colours.get(name, '0')}m{prefix}\033[0m"
        with self.lock:
            try:
                self.out.write(prefix + text + "\n")
                self.out.flush()
            except (OSError, ValueError):
                pass  # our own output went away (a closed pipe): keep supervising

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.line(SUPERVISOR, line)


class Supervisor:
    def __init__(
        self,
        processes: Sequence[ProcessType],
        *,
        policy: Policy,
        printer: Printer,
        env: Mapping[str, str],
        cwd: Path,
    ) -> None:
        self.processes = [Supervised(spec, backoff=policy.backoff) for spec in processes]
        self.policy = policy
        self.printer = printer
        self.env = dict(env)
        self.cwd = cwd
        # Groups whose leader has exited but where something may linger: pgid -> (name, SIGKILL at).
        self.lingering: dict[int, tuple[str, float]] = {}
        self.wakeup = threading.Event()
        self.stop_reason: str | None = None
        self.kill_now = False

    # Signals only set flags: the handler may interrupt the main thread inside the printer's lock.
    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop_reason is None:
            self.stop_reason = (
                "Ctrl-C" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"
            )
        else:
            self.kill_now = True
        self.wakeup.set()

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        for process in self.processes:
            if self.stop_reason is None:
                self._start(process)
        code = 0
        while self.stop_reason is None:
            self._tick(time.monotonic())
            if not any(p.run or p.restart_at is not None for p in self.processes):
                code = 0 if all(p.finished for p in self.processes) else 1
                self.printer.say("Nothing is left running: stopping.")
                break
            self.wakeup.wait(0.2)
            self.wakeup.clear()
        self._stop_everything()
        return code

    def _start(self, process: Supervised) -> None:
        process.restart_at = None
        if process.last_pgid is not None and process.last_pgid in self.lingering:
            self._kill_leftovers(process.last_pgid)
        popen = subprocess.Popen(  # noqa: S603 - the Procfile's own lines, run as a shell would
            ["/bin/sh", "-c", shell_line(process.spec.command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: signals reach its children too
            env=self.env,
            cwd=self.cwd,
        )
        # A pid is only reused once its old group is empty; that group is then gone for good.
        self.lingering.pop(popen.pid, None)
        run = Run(popen=popen, started_at=time.monotonic())
        run.reader = threading.Thread(
            target=self._pump, args=(process.name, run), name=f"output-{process.name}", daemon=True
        )
        process.run = run
        process.last_pgid = popen.pid
        verb = "restarted" if process.restarts else "started"
        self.printer.say(f"{process.name} {verb} (pid {popen.pid})")
        run.reader.start()

    def _pump(self, name: str, run: Run) -> None:
        if run.popen.stdout is None:
            return
        with run.popen.stdout as output:
            for raw in iter(output.readline, b""):
                text = raw.decode(errors="replace").rstrip("\r\n")
                run.tail.append(text)
                self.printer.line(name, text)

    def _tick(self, now: float) -> None:
        for process in self.processes:
            if process.run is not None and process.run.popen.poll() is not None:
                self._exited(process, process.run, now)
            elif process.restart_at is not None and now >= process.restart_at:
                self._start(process)
        for pgid, (name, kill_at) in list(self.lingering.items()):
            if not group_alive(pgid):
                del self.lingering[pgid]
            elif now >= kill_at:
                self.printer.say(f"{name}: what it left running ignored SIGTERM; killing it")
                signal_group(pgid, signal.SIGKILL)
                del self.lingering[pgid]

    def _kill_leftovers(self, pgid: int) -> None:
        """Before a restart: what the last run left behind may still hold its port."""
        name, _ = self.lingering.pop(pgid)
        if not group_alive(pgid):
            return
        self.printer.say(f"{name}: killing what its last run left running")
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _clear_group(self, name: str, run: Run) -> None:
        """A finished leader's children (a Celery pool, runserver's reloaded child) go with it,
        so a restart never finds its port or its queue still taken."""
        if group_alive(run.pid):
            signal_group(run.pid, signal.SIGTERM)
            self.lingering[run.pid] = (name, time.monotonic() + self.policy.leftover_grace)
        elif run.reader is not None:
            run.reader.join(timeout=1)  # its last lines come before what we say about it

    def _exited(self, process: Supervised, run: Run, now: float) -> None:
        process.run = None
        code = run.popen.returncode
        uptime = now - run.started_at
        self._clear_group(process.name, run)
        what = f"{process.name} {exit_description(code)} after {duration(uptime)}"
        if process.spec.once:
            process.finished = code == 0
            if code == 0:
                self.printer.say(f"{what} (it runs once: not restarted)")
            else:
                self.printer.say(f"{what}; it runs once, so it is not restarted.")
                self._show_tail(process.name, run)
            return

        policy = self.policy
        if uptime >= policy.stable_after:
            process.backoff = policy.backoff
            process.recent_exits.clear()
        while process.recent_exits and now - process.recent_exits[0] > policy.give_up_window:
            process.recent_exits.popleft()
        if len(process.recent_exits) >= policy.give_up_after:
            process.given_up = True
            self.printer.say(
                f"{what}, its {len(process.recent_exits)} restarts within "
                f"{duration(policy.give_up_window)} all failed: giving up on {process.name} "
                "(the other processes keep running)."
            )
            self._show_tail(process.name, run)
            self.printer.say(
                f"What to check: the error above; whether a port it listens on is taken or a "
                f"service it needs (Redis, the database) is down. Run it alone to see it all: "
                f"{process.spec.command}\n"
                "Then stop with Ctrl-C and start again."
            )
            return
        process.recent_exits.append(now)
        process.restarts += 1
        delay = process.backoff
        process.backoff = min(process.backoff * 2, policy.max_backoff)
        process.restart_at = now + delay
        self.printer.say(f"{what}; restarting in {duration(delay)} (restart {process.restarts})")

    def _show_tail(self, name: str, run: Run) -> None:
        lines = list(run.tail)
        if not lines:
            self.printer.say(f"{name} printed nothing.")
            return
        self.printer.say(f"{name}'s last {len(lines)} lines:")
        for text in lines:
            self.printer.say(f"  > {text}")

    def _stop_everything(self) -> None:
        reason = self.stop_reason or "Stopping"
        groups: dict[int, str] = {}
        for process in self.processes:
            process.restart_at = None
            if process.run is not None:
                groups[process.run.pid] = process.name
        for pgid, (name, _) in self.lingering.items():
            groups.setdefault(pgid, name)
        if groups:
            self.printer.say(
                f"{reason}: stopping every process (a second Ctrl-C kills them at once)"
            )
        for pgid in groups:
            signal_group(pgid, signal.SIGTERM)

        deadline = time.monotonic() + self.policy.stop_timeout
        killed_at: float | None = None
        while groups:
            for process in self.processes:
                run = process.run
                if run is not None and run.popen.poll() is not None:
                    process.run = None
                    if run.reader is not None:
                        run.reader.join(timeout=0.5)
                    self.printer.say(
                        f"{process.name} stopped ({exit_description(run.popen.returncode)})"
                    )
            for pgid in list(groups):
                leader_running = any(
                    p.run is not None and p.run.pid == pgid for p in self.processes
                )
                if not leader_running and not group_alive(pgid):
                    del groups[pgid]
            if not groups:
                break
            now = time.monotonic()
            if killed_at is None and (self.kill_now or now >= deadline):
                if self.kill_now:
                    self.printer.say(f"Killing {', '.join(sorted(set(groups.values())))} now.")
                else:
                    self.printer.say(
                        f"{', '.join(sorted(set(groups.values())))} did not stop within "
                        f"{duration(self.policy.stop_timeout)}: killing (SIGKILL)."
                    )
                for pgid in groups:
                    signal_group(pgid, signal.SIGKILL)
                killed_at = now
            elif killed_at is not None and now - killed_at > 5:
                self.printer.say(f"Still running after SIGKILL: {', '.join(groups.values())}.")
                break
            self.wakeup.wait(0.1)
            self.wakeup.clear()
        self.lingering.clear()
        self.printer.say("Every process has stopped.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = Policy()
    parser = argparse.ArgumentParser(
        prog="python -m studio.project.supervisor",
        description="Run a Procfile's processes, restarting those that exit.",
    )
    parser.add_argument("procfile", type=Path)
    parser.add_argument("names", nargs="*", help="the processes to run (default: all)")
    parser.add_argument("--backoff", type=float, default=defaults.backoff, metavar="SECONDS")
    parser.add_argument(
        "--max-backoff", type=float, default=defaults.max_backoff, metavar="SECONDS"
    )
    parser.add_argument(
        "--stable-after",
        type=float,
        default=defaults.stable_after,
        metavar="SECONDS",
        help="an exit after this long up starts the backoff over",
    )
    parser.add_argument(
        "--give-up-after",
        type=int,
        default=defaults.give_up_after,
        metavar="RESTARTS",
        help="give up on a process that exits again after this many restarts in the window",
    )
    parser.add_argument(
        "--give-up-window", type=float, default=defaults.give_up_window, metavar="SECONDS"
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=defaults.stop_timeout, metavar="SECONDS"
    )
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="read if present (default: .env)"
    )
    parser.add_argument("--no-colour", action="store_true")
    return parser.parse_intermixed_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text = args.procfile.read_text()
    except OSError as error:
        print(f"supervisor: cannot read {args.procfile}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        processes = select_processes(parse_procfile(text), args.names)
    except ProcfileError as error:
        print(f"supervisor: {args.procfile}: {error}", file=sys.stderr)
        return 2
    if not processes:
        print(f"supervisor: {args.procfile} has no processes", file=sys.stderr)
        return 2

    env = dict(os.environ)
    env[STARTED_AT] = f"{time.time():.3f}"
    colour = not args.no_colour and "NO_COLOR" not in env and sys.stdout.isatty()
    printer = Printer([p.name for p in processes], colour=colour)
    if args.env_file.is_file():
        from_file = read_env_file(args.env_file)
        env.update(from_file)
        count = len(from_file)
        printer.say(f"Read {count} variable{'' if count == 1 else 's'} from {args.env_file}.")
    policy = Policy(
        backoff=args.backoff,
        max_backoff=args.max_backoff,
        stable_after=args.stable_after,
        give_up_after=args.give_up_after,
        give_up_window=args.give_up_window,
        stop_timeout=args.stop_timeout,
    )
    supervisor = Supervisor(processes, policy=policy, printer=printer, env=env, cwd=Path.cwd())
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
