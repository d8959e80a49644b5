"""The emulator skeleton: dispatch with auth, outage, rate limits and faults; control endpoints;
and `serve()`, which runs any emulator on a loopback port in a background thread.

A provider module subclasses `Emulator`, adds its routes and says how its errors
look; everything a test or demo steers (`/_emulator/...`) works the same for all.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from jobs.emulators.state import (
    Clock,
    Counters,
    EmulatorConfig,
    Fault,
    FaultQueue,
    RateLimiter,
    RequestLog,
)
from jobs.emulators.wsgi import (
    ApiError,
    DropConnection,
    Request,
    Response,
    Router,
    ThreadingWSGIServer,
    json_response,
    make_server,
)

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator"


def retry_after_headers(seconds: float, *, with_ms: bool = False) -> list[tuple[str, str]]:
    """`Retry-After` in whole seconds (as HTTP requires), plus OpenAI's `retry-after-ms`."""
    headers = [("Retry-After", str(max(1, math.ceil(seconds))))]
    if with_ms:
        headers.append(("retry-after-ms", str(round(seconds * 1000))))
    return headers


class Emulator:
    """A provider emulator as a WSGI app. Subclasses fill in routes and error rendering."""

    name: ClassVar[str] = "emulator"
    api_prefix: ClassVar[str] = "/v1"

    def __init__(self, **config: Any) -> None:
        # Constructor overrides (e.g. `--latency` of run_emulators) survive a reset.
        self._defaults = EmulatorConfig().merged(config)
        self.config = self._defaults
        self.clock = Clock()
        self.faults = FaultQueue()
        self.log = RequestLog()
        self.counters = Counters()
        self._rate = RateLimiter()
        self.stopping = threading.Event()
        self.router = Router()
        self._add_control_routes()
        self.add_routes(self.router)

    # --- What a provider module supplies ---------------------------------------------------

    def add_routes(self, router: Router) -> None:
        raise NotImplementedError

    def render_error(self, error: ApiError) -> Response:
        """The provider's error body for `error`."""
        raise NotImplementedError

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        """The provider's answer for: unauthorized, rate_limit, quota, server_error,
        unavailable, moderation (a refused character), not_found_route."""
        raise NotImplementedError

    def clear_data(self) -> None:
        """Forget every job, character and delivery (on reset)."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def start(self) -> None:
        """Start background threads (called by serve())."""

    def close(self) -> None:
        """Stop background threads and release held connections."""
        self.stopping.set()

    # --- Dispatch -----------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self._dispatch(environ)
        headers = [("Content-Type", response.content_type)]
        if isinstance(response.body, bytes):
            headers.append(("Content-Length", str(len(response.body))))
            body: Iterable[bytes] = [response.body]
        else:
            headers.append(("Content-Length", str(response.length)))
            body = response.body
        start_response(
            f"{response.status} {HTTPStatus(response.status).phrase}", headers + response.headers
        )
        return body

    def _dispatch(self, environ: dict[str, Any]) -> Response:
        started = time.monotonic()
        try:
            request = Request.from_environ(environ)
        except ApiError as error:
            return self.render_error(error)
        resolved = self.router.resolve(request.method, request.path)
        if resolved is None:
            error = self.standard_error("not_found_route")
            error.message = f"Invalid URL ({request.method} {request.path})"
            return self.render_error(error)
        route, request.params = resolved
        if route.op is None:  # control endpoints: never faulted, never logged
            return self._run(route.handler, request)

        fault: Fault | None = None
        try:
            if not route.public:
                self._check_access(request)
            can_moderate = request.method == "POST" and route.op in ("create", "character")
            fault = self.faults.take(route.op, can_moderate=can_moderate)
            if fault is not None:
                self.counters.bump("faults_served")
                if fault.kind == "moderation":
                    request.forced_moderation = True
                elif fault.kind != "timeout":
                    raise self._fault_error(fault)
            response = route.handler(request)
        except ApiError as error:
            response = self.render_error(error)
        except Exception:
            logger.exception("%s emulator failed on %s %s", self.name, request.method, request.path)
            response = self.render_error(self.standard_error("server_error"))

        dropped = fault is not None and fault.kind == "timeout"
        self._record(request, route.op, response, dropped=dropped, started=started)
        if dropped:
            # The work is done (a create exists and will complete) but the client never
            # hears about it: that is what a timed-out create looks like from outside.
            self.stopping.wait(fault.timeout_seconds)  # type: ignore[union-attr]
            raise DropConnection
        return response

    def _run(self, handler: Callable[[Request], Response], request: Request) -> Response:
        try:
            return handler(request)
        except ApiError as error:
            return self.render_error(error)

    def credential(self, request: Request) -> str | None:
        """The key a request authenticates with, or None. Bearer tokens by default; a
        provider with another scheme (fal's `Key`, Google's `x-goog-api-key`, Kling's
        signed JWT) overrides this, raising `standard_error("invalid_api_key")` for a
        credential that is present but wrong (a bad JWT signature)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    def _check_access(self, request: Request) -> None:
        config = self.config
        if config.outage:
            raise self.standard_error("unavailable")
        token = self.credential(request)
        if not token:
            raise self.standard_error("unauthorized")
        if config.accepted_api_keys and token not in config.accepted_api_keys:
            raise self.standard_error("invalid_api_key")
        wait = self._rate.check(config.rate_limit_per_minute)
        if wait is not None:
            raise self.standard_error("rate_limit", retry_after=wait)

    def _fault_error(self, fault: Fault) -> ApiError:
        kind = {
            "429": "rate_limit",
            "quota": "quota",
            "500": "server_error",
            "503": "unavailable",
        }[fault.kind]
        return self.standard_error(kind, retry_after=fault.retry_after)

    def _record(
        self,
        request: Request,
        op: str,
        response: Response,
        *,
        dropped: bool,
        started: float,
    ) -> None:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "op": op,
            "status": None if dropped else response.status,
            "time": time.time(),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "job_id": response.job_id,
        }
        if dropped:
            entry["dropped"] = True
        self.log.add(entry)
        self.counters.bump("requests")
        if response.job_id and op == "create":
            self.counters.bump("creates")
        if response.status == 200 and op in ("retrieve", "list"):
            self.counters.bump("polls", op)
        if response.status == 200 and op == "content" and not dropped:
            self.counters.bump("downloads", request.query.get("variant") or "video")

    # --- Control endpoints ----------------------------------------------------------------------

    def _add_control_routes(self) -> None:
        add = self.router.add
        add("GET", f"{CONTROL_PREFIX}/state", self._control_state, op=None)
        add("POST", f"{CONTROL_PREFIX}/config", self._control_config, op=None)
        add("POST", f"{CONTROL_PREFIX}/faults", self._control_faults, op=None)
        add("POST", f"{CONTROL_PREFIX}/reset", self._control_reset, op=None)
        add("POST", f"{CONTROL_PREFIX}/clock", self._control_clock, op=None)
        add("GET", f"{CONTROL_PREFIX}/log", self._control_log, op=None)

    def state(self) -> dict[str, Any]:
        return {
            "emulator": self.name,
            "config": self.config.as_dict(),
            "clock": {"now": self.clock.now(), "offset_seconds": self.clock.offset},
            "counters": self.counters.snapshot(),
            "faults": self.faults.pending(),
            **self.extra_state(),
        }

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Merge config changes (ValueError if one is invalid); also used in-process."""
        self.config = self.config.merged(changes)
        return self.config

    def reset(self) -> None:
        self.config = self._defaults
        self.clock.reset()
        self.faults.clear()
        self.log.clear()
        self.counters.clear()
        self._rate.clear()
        self.clear_data()

    def _control_state(self, request: Request) -> Response:
        return json_response(self.state())

    def _control_config(self, request: Request) -> Response:
        try:
            self.configure(**request.json())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return json_response({"config": self.config.as_dict()})

    def _control_faults(self, request: Request) -> Response:
        raw = request.json().get("faults")
        if not isinstance(raw, list):
            raise ApiError(400, 'Send {"faults": [...]}.')
        try:
            faults = [Fault.parse(item) for item in raw]
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        self.faults.add(faults)
        return json_response({"faults": self.faults.pending()})

    def _control_reset(self, request: Request) -> Response:
        self.reset()
        return json_response({"reset": True})

    def _control_clock(self, request: Request) -> Response:
        seconds = request.json().get("advance_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ApiError(400, 'Send {"advance_seconds": <seconds >= 0>}.')
        self.clock.advance(float(seconds))
        return json_response({"now": self.clock.now(), "offset_seconds": self.clock.offset})

    def _control_log(self, request: Request) -> Response:
        return json_response({"entries": self.log.entries()})


# --- Serving ----------------------------------------------------------------------------------


@dataclass
class RunningEmulator:
    app: Emulator
    server: ThreadingWSGIServer
    thread: threading.Thread
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The server root, e.g. http://127.0.0.1:8101 (control endpoints live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL a provider adapter is given, e.g. http://127.0.0.1:8101/v1."""
        return self.url + self.app.api_prefix

    def stop(self) -> None:
        self.app.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(app: Emulator, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
    """Serve `app` on a loopback port (0: any free one) from a daemon thread."""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError("Emulators only listen on loopback addresses.")
    server = make_server(host, port, app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"{app.name}-emulator",
        daemon=True,
    )
    thread.start()
    app.start()
    return RunningEmulator(app=app, server=server, thread=thread, host=host)
