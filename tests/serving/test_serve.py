"""`make serve`'s stack: gunicorn with our config over real HTTP, the compression middleware,
and the process file and Makefile target that start it all.

The server tests start gunicorn as `make serve` does (studio/project/gunicorn.conf.py, DEBUG
off, static files collected into the machine's var/), on a free loopback port, against the
test database and Redis. One worker with four threads keeps the load bounded and makes the
thread pool observable.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import runpy
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import RequestFactory
from gunicorn.config import KNOWN_SETTINGS

from studio.project.compression import CompressionMiddleware
from studio.project.redis_server import free_port
from studio.project.supervisor import parse_procfile
from tests.support.processes import ROOT, database_url_of_current_connection, wait_until

GUNICORN_CONFIG = ROOT / "studio" / "project" / "gunicorn.conf.py"
PROCFILE = ROOT / "Procfile.serve"
THREADS = 4
# What `make serve` decides by, cleared so that only a test's own values count.
MAKE_SERVE_INPUTS = {
    "REDIS_URL",
    "SERVE_EMULATORS",
    "SERVE_PROCESSES",
    "PUBLIC_BASE_URL",
    "MAKEFLAGS",
}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    static_root: Path
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        """One request over a fresh connection: status, headers (lower-cased), raw body (not
        decoded, so what the wire carried is what the test sees)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            connection.close()


def _serving(server: Server, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{server.log.read_text()}")
    try:
        status, _, _ = server.get("/login/")
    except OSError:
        return False
    return status == 200


@pytest.fixture(scope="module")
def production_server(django_db_setup, redis_url, tmp_path_factory) -> Iterator[Server]:
    """gunicorn with DEBUG off, as `make serve` starts it, on its own var/ folder."""
    var = tmp_path_factory.mktemp("serve-var")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.project.settings",
        "DEBUG": "false",
        "DATABASE_URL": database_url_of_current_connection(),
        "REDIS_URL": redis_url,
        "CASTBOARD_VAR_DIR": str(var),
        # Plain HTTP on loopback, as `make serve` without an https PUBLIC_BASE_URL.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": str(THREADS),
        "WEB_ACCESS_LOG": "",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    server = Server("127.0.0.1", port, static_root=var / "staticfiles", log=var / "gunicorn.log")
    with server.log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own server, fixed argv
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: _serving(server, process), timeout=60, message="gunicorn did not answer")
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
class TestTheProductionServer:
    def test_it_serves_the_login_page_with_debug_off(self, production_server):
        status, headers, body = production_server.get("/login/")

        assert status == 200
        assert headers["server"] == "gunicorn"
        assert b'name="password"' in body
        # DEBUG off: a missing page is the plain 404, not Django's URL listing.
        status, _, body = production_server.get("/no-such-page/")
        assert status == 404
        assert b"URLconf" not in body

    def test_it_serves_hashed_static_files_gzipped_and_cached_for_good(self, production_server):
        manifest = json.loads((production_server.static_root / "staticfiles.json").read_text())
        hashed = manifest["paths"]["css/castboard.css"]
        assert hashed != "css/castboard.css"

        status, headers, body = production_server.get(
            f"/static/{hashed}", {"Accept-Encoding": "gzip"}
        )

        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert "immutable" in headers["cache-control"]
        assert gzip.decompress(body) == (production_server.static_root / hashed).read_bytes()

    def test_it_compresses_a_page_for_a_client_that_accepts_gzip(self, production_server):
        status, headers, body = production_server.get("/login/", {"Accept-Encoding": "gzip"})

        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in headers["vary"]
        assert b'name="password"' in gzip.decompress(body)
        assert int(headers["content-length"]) == len(body)

    def test_it_sends_a_page_plain_to_a_client_that_does_not(self, production_server):
        status, headers, body = production_server.get("/login/")

        assert status == 200
        assert "content-encoding" not in headers
        assert b'name="password"' in body

    def test_it_believes_a_proxy_on_loopback_that_says_the_request_came_over_https(
        self, production_server
    ):
        """A TLS proxy on the machine (FORWARDED_ALLOW_IPS) makes the request secure for
        Django: HSTS is sent, as DEBUG-off settings ask for every secure request."""
        _, behind_proxy, _ = production_server.get("/login/", {"X-Forwarded-Proto": "https"})
        _, plain, _ = production_server.get("/login/")

        assert behind_proxy["strict-transport-security"].startswith("max-age=31536000")
        assert "strict-transport-security" not in plain

    def test_it_serves_concurrent_requests(self, production_server):
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: production_server.get("/login/"), range(16)))

        assert [status for status, _, _ in answers] == [200] * 16

    def test_a_worker_serves_others_while_its_threads_wait_on_slow_clients(self, production_server):
        """Each held connection (a slow client here; an open event stream in the studio)
        takes one of the worker's threads; the others go on serving."""
        held = []
        try:
            for _ in range(THREADS - 1):
                client = socket.create_connection(
                    (production_server.host, production_server.port), timeout=30
                )
                # Half a request: the thread that took it waits for the rest.
                client.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                held.append(client)

            with ThreadPoolExecutor(max_workers=3) as pool:
                answers = list(pool.map(lambda _: production_server.get("/login/"), range(6)))
            assert [status for status, _, _ in answers] == [200] * 6

            for client in held:
                client.sendall(b"Connection: close\r\n\r\n")
                assert client.recv(64).startswith(b"HTTP/1.1 200")
        finally:
            for client in held:
                client.close()


class TestCompressionMiddleware:
    """Unit-wise, what the server tests cannot easily show: streams and media stay as they are."""

    @staticmethod
    def respond(response, *, accept: str = "gzip, deflate, br"):
        request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING=accept)
        return CompressionMiddleware(lambda request: response)(request)

    def test_it_compresses_html(self):
        html = "<li>Mina walks along the pier at dusk.</li>" * 200

        response = self.respond(HttpResponse(html))

        assert response["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.content).decode() == html
        assert "Accept-Encoding" in response["Vary"]

    def test_it_compresses_json(self):
        response = self.respond(JsonResponse({"scenes": list(range(500))}))

        assert response["Content-Encoding"] == "gzip"

    def test_it_leaves_html_alone_for_a_client_without_gzip(self):
        response = self.respond(HttpResponse("<p>scene</p>" * 200), accept="identity")

        assert not response.has_header("Content-Encoding")

    def test_it_passes_an_event_stream_through_event_by_event(self):
        produced = []

        def events():
            for number in range(3):
                produced.append(number)
                yield f"event: progress\ndata: {number}\n\n".encode() * 50

        response = self.respond(StreamingHttpResponse(events(), content_type="text/event-stream"))
        first = next(iter(response.streaming_content))

        assert not response.has_header("Content-Encoding")
        assert first.startswith(b"event: progress\ndata: 0\n\n")
        assert produced == [0]  # sent on at once, nothing held back in a buffer

    def test_it_never_compresses_an_event_stream_sent_whole(self):
        body = "event: progress\ndata: 1\n\n" * 50

        response = self.respond(HttpResponse(body, content_type="text/event-stream"))

        assert not response.has_header("Content-Encoding")
        assert response.content.decode() == body

    def test_it_leaves_a_video_alone(self):
        video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096

        response = self.respond(FileResponse(BytesIO(video), content_type="video/mp4"))

        assert not response.has_header("Content-Encoding")
        assert b"".join(response.streaming_content) == video

    def test_it_leaves_a_byte_range_alone_whatever_its_type(self):
        response = HttpResponse("x" * 1000, status=206, content_type="text/plain")
        response["Content-Range"] = "bytes 0-999/5000"

        response = self.respond(response)

        assert not response.has_header("Content-Encoding")
        assert response.content == b"x" * 1000


class TestTheGunicornConfig:
    @staticmethod
    def load(monkeypatch, **environment: str) -> dict:
        names = ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_BIND", "WEB_MAX_REQUESTS")
        for name in (*names, "DATABASE_POOL_SIZE"):
            monkeypatch.setenv(name, "")  # recorded, so what the file sets is undone after
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(GUNICORN_CONFIG))

    def test_every_setting_it_makes_is_one_gunicorn_knows(self, monkeypatch):
        config = self.load(monkeypatch)
        known = {setting.name for setting in KNOWN_SETTINGS}
        own = {"BASE_DIR", "VAR_DIR", "Path", "annotations"}

        made = {
            name
            for name, value in config.items()
            if not name.startswith("_") and name not in own and not isinstance(value, type(os))
        }
        assert made <= known
        assert {"worker_class", "workers", "threads", "preload_app", "pre_fork"} <= made

    def test_its_defaults_are_threaded_workers_on_loopback(self, monkeypatch):
        config = self.load(monkeypatch)

        assert config["worker_class"] == "gthread"
        assert 2 <= config["workers"] <= 8
        assert config["threads"] == 64
        assert os.environ["DATABASE_POOL_SIZE"] == "16"  # pooled connections by default
        assert config["bind"] == ["127.0.0.1:8000"]
        assert config["max_requests"] > 0
        assert config["max_requests_jitter"] > 0

    def test_it_reads_workers_threads_and_addresses_from_the_environment(self, monkeypatch):
        config = self.load(
            monkeypatch,
            WEB_CONCURRENCY="3",
            WEB_THREADS="32",
            WEB_BIND="0.0.0.0:8000, unix:/run/castboard.sock",
        )

        assert (config["workers"], config["threads"]) == (3, 32)
        assert config["bind"] == ["0.0.0.0:8000", "unix:/run/castboard.sock"]

    def test_it_stops_on_a_value_that_is_not_a_number_naming_it(self, monkeypatch):
        with pytest.raises(SystemExit, match="WEB_THREADS"):
            self.load(monkeypatch, WEB_THREADS="many")


def _serve_processes(**environment: str) -> list[str]:
    """The process names `make serve` would start, read from `make -n` (nothing runs)."""
    env = {name: value for name, value in os.environ.items() if name not in MAKE_SERVE_INPUTS}
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "serve"],  # noqa: S607 - make from PATH, as CI
        cwd=ROOT,
        env={**env, **environment},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    match = re.search(r"studio\.project\.supervisor Procfile\.serve ([\w ]+)", plan)
    assert match, plan
    return match.group(1).split()


class TestProcfileServe:
    processes = {process.name: process.command for process in parse_procfile(PROCFILE.read_text())}

    def argv(self, name: str) -> list[str]:
        return shlex.split(self.processes[name])

    def test_every_line_runs_a_program_that_exists(self):
        for name, command in self.processes.items():
            program = ROOT / shlex.split(command)[0]
            assert os.access(program, os.X_OK), f"{name}: {program} is not executable"

    def test_its_management_commands_exist(self):
        commands = get_commands()
        for name in self.processes:
            argv = self.argv(name)
            if argv[1:2] == ["manage.py"]:
                assert argv[2] in commands, f"{name}: no command {argv[2]}"

    def test_web_is_gunicorn_with_our_config_and_app(self):
        argv = self.argv("web")

        assert Path(argv[0]).name == "gunicorn"
        assert (ROOT / argv[argv.index("--config") + 1]) == GUNICORN_CONFIG
        assert find_spec(argv[-1]) is not None

    def test_its_workers_consume_every_queue_and_one_beat_runs(self):
        queues = set()
        beats = 0
        for name in self.processes:
            argv = self.argv(name)
            if Path(argv[0]).name == "celery" and "worker" in argv:
                queues.update(argv[argv.index("--queues") + 1].split(","))
            beats += Path(argv[0]).name == "celery" and "beat" in argv

        assert queues == {queue.name for queue in settings.CELERY_TASK_QUEUES}
        assert beats == 1

    def test_make_serve_starts_redis_web_workers_and_beat_without_the_emulators(self):
        names = _serve_processes()

        assert set(names) <= set(self.processes)
        assert set(names) == {"redis", "web", "worker", "media", "scores", "beat"}

    def test_make_serve_leaves_redis_to_a_given_redis_url(self):
        names = _serve_processes(REDIS_URL="redis://redis.internal:6379/0")

        assert "redis" not in names
        assert "web" in names

    def test_make_serve_starts_the_emulators_when_asked(self):
        names = _serve_processes(SERVE_EMULATORS="1")

        assert set(names) <= set(self.processes)
        assert {"emulators", "announce"} <= set(names)
