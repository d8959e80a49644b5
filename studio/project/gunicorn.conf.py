"""gunicorn's configuration for Castboard's web processes (`make serve`, Procfile.serve).

    gunicorn --config studio/project/gunicorn.conf.py studio.project.wsgi

Why gunicorn rather than granian: Castboard is a WSGI Django app, and gunicorn's gthread
worker gives each worker a pool of threads, which is what live progress needs: every open
page holds one server-sent-event stream, and each stream holds one thread for as long as the
page is open, while the other threads go on serving pages. gunicorn is the mature choice for
that (a decade of production use, signals and graceful restarts every process manager knows);
granian is faster on raw throughput but its WSGI mode is younger, and our time goes to Django
(rendering, queries), not to the server.

Read from the environment (names as in .env.example):
  WEB_CONCURRENCY  worker processes (default one per core, at least 2, at most 8)
  WEB_THREADS      threads per worker, each one request or one open event stream (default 64)
  DATABASE_POOL_SIZE  database connections a worker's threads share (default 16 here)
  WEB_BIND         where to listen (default 127.0.0.1:8000; several: comma-separated)
  WEB_TIMEOUT, WEB_GRACEFUL_TIMEOUT, WEB_KEEPALIVE, WEB_MAX_REQUESTS, WEB_ACCESS_LOG
  FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-Proto is believed (default 127.0.0.1,::1)
Anything else: gunicorn's own GUNICORN_CMD_ARGS, which wins over this file.

This file is read by gunicorn's master before Django is loaded: it imports no Django.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("CASTBOARD_VAR_DIR") or BASE_DIR / "var")


def _int(name: str, default: int, *, minimum: int) -> int:
    """A whole number from the environment; a bad one stops gunicorn, naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "studio.project.wsgi:application"
chdir = str(BASE_DIR)

# Processes for CPU (rendering a storyboard is Python work, one core per process at a time),
# threads for waiting (database, Redis, event streams). Not gunicorn's 2 x cores + 1: every
# open storyboard holds a thread with its event stream, and the streams of one process share
# the cards they render (studio/live.py), so a few processes with many threads serve more.
# benchmarks/load.py, 50 users on a 2-core machine: 5 workers x 16 threads (and a new
# database connection per request) gave a storyboard p95 of 1,495 ms; 2 x 32, 1,916 ms
# (threads held by streams: requests queued behind them); 2 x 64 with pooled connections,
# see the README's Production section.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", min(max(_cores(), 2), 8), minimum=1)
threads = _int("WEB_THREADS", 64, minimum=1)

# On PostgreSQL, each worker's threads share a pool of this many connections (Django's own
# pooling) instead of opening one per request: a PostgreSQL connection is a new server
# process. workers x pool stays far under PostgreSQL's default max_connections of 100.
# Read by Django's settings when the app loads, after this file.
os.environ.setdefault("DATABASE_POOL_SIZE", "16")

bind = [
    address.strip()
    for address in os.environ.get("WEB_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
# The master checks each worker's heartbeat; a gthread worker's main loop keeps beating while
# its threads serve, so a long request (an open event stream) never trips this.
timeout = _int("WEB_TIMEOUT", 30, minimum=0)
# On a restart or stop, requests in flight get this long. Event streams never finish by
# themselves: they are cut after it, and the browser's EventSource reconnects to a new worker.
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 10, minimum=1)
# Behind a proxy the connection is reused between requests; idle ones wait in the worker's
# poller, not in a thread.
keepalive = _int("WEB_KEEPALIVE", 5, minimum=0)
# Each worker is replaced after about this many requests (jittered, so they do not all go at
# once): a slow leak in a dependency cannot grow forever. 0 turns it off.
max_requests = _int("WEB_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = max_requests // 10

# Load Django once in the master, then fork: workers start in milliseconds (also on each
# max_requests replacement), share the loaded code's memory, and a missing SECRET_KEY stops
# the master once, with its message, instead of every worker failing to boot.
# studio.project.wsgi freezes the startup objects out of the garbage collector before the
# fork, so the workers' collections never walk (nor copy) them. What must not be shared
# across a fork are open connections, and loading opens none: the Celery producer pool and
# the provider HTTP client that wsgi.py warms up are built unconnected, and redis-py starts a
# fresh pool in a process whose pid changed. The database is the one to guard: see pre_fork.
preload_app = True

# A proxy on this machine (nginx, Caddy) terminates TLS and says so with X-Forwarded-Proto;
# gunicorn believes it only from these addresses, so Django sees https requests as secure.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs to standard output (the supervisor's or the service manager's journal). The access
# log line ends with the request's duration in milliseconds; WEB_ACCESS_LOG= (empty) turns
# it off, e.g. under a load test, or a path sends it to a file.
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
errorlog = "-"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# gunicornc's control socket: in this machine's var/, so two servers (a test's, a second
# checkout's) never take each other's.
control_socket = str(VAR_DIR / "gunicorn.ctl")
# The heartbeat file is touched every second: in memory where there is one (Docker's
# overlay file systems make that slow).
_RAM_DISK = Path("/dev/shm")  # noqa: S108 - a RAM file system, only for heartbeat files
if _RAM_DISK.is_dir():
    worker_tmp_dir = str(_RAM_DISK)


def pre_fork(server, worker) -> None:
    """Nothing the master opened goes to a worker: close its database connections.

    Loading opens none today, but a connection made in the master would be shared by every
    worker's socket, and their queries would interleave on it. The master serves nothing, so
    closing costs nothing."""
    from django.db import connections

    connections.close_all()


def when_ready(server) -> None:
    """Say where Castboard answers, once the sockets are bound and the app is loaded."""
    addresses = ", ".join(f"http://{address}/" for address in bind)
    public = os.environ.get("PUBLIC_BASE_URL", "")
    server.log.info(
        "Castboard is serving at %s (%s workers x %s threads)%s",
        addresses,
        workers,
        threads,
        f"; its public address is {public}" if public else "",
    )
