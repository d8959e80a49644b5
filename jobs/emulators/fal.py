"""fal.ai's queue (PROVIDERS.md section 3, Aggregators), serving the hosted models of
jobs/providers/fal_models.toml at the server root, as queue.fal.run does.

`POST /{owner}/{app}[/{path}]` (`Authorization: Key …`, optional `?fal_webhook=`) queues a
request; `/{owner}/{app}/requests/{id}/status`, `/{owner}/{app}/requests/{id}` and
`PUT …/cancel` use owner and app only. Requests go IN_QUEUE (with a queue_position) →
IN_PROGRESS (with logs) → COMPLETED; a failure is COMPLETED with `error`, and the result
answers the model's error body. Bodies are checked against the model's row, the way a
FastAPI app checks them: 422 `{detail: [{loc, msg, type}]}`. The models file is parsed
here on its own (not through the adapter), so a parsing bug there cannot hide here.

Results sit at CDN-like links on this server that expire after asset_ttl_seconds.
Webhooks are signed with this emulator's own Ed25519 key, published as a JWKS at
/.well-known/jwks.json; `POST /_emulator/rotate_webhook_key` replaces the key.
`[[emulate:moderation]]` fails a request with fal's content_policy_violation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import decode_data_url, fetch, open_image, sniff_image
from jobs.emulators.render import (
    CastMember,
    RenderedVideo,
    dominant_color,
    figures,
    reference_picture,
    render_video,
)
from jobs.emulators.state import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Once,
    Store,
    Timeline,
    strip_markers,
    take_drift,
)
from jobs.emulators.webhooks import NotifiesWhenDone, WebhookSender, _Delivery
from jobs.emulators.wsgi import ApiError, Request, Response, Router, bytes_response, json_response

MODELS_FILE = Path(__file__).resolve().parent.parent / "providers" / "fal_models.toml"
RESULT_TTL_SECONDS = 7 * 24 * 3600  # fal's media links last days, not hours [?]
USER_ID = "castboard-emulator-user"  # the account fal names in X-Fal-Webhook-User-Id
FETCH_TIMEOUT_SECONDS, FETCH_MAX_BYTES = 10.0, 50 * 1024 * 1024
CANCELLED_TYPE = "client_cancelled"


def _policy_problem(value: Any = None) -> dict[str, Any]:
    """fal's content-policy error item: a prompt (or its output) the checker flagged."""
    problem = {
        "loc": ["body", "prompt"],
        "msg": "The content was flagged by a content checker.",
        "type": "content_policy_violation",
        "url": "https://docs.fal.ai/errors#content_policy_violation",
    }
    return problem if value is None else {**problem, "input": value}


_LABELLED = re.compile(r"(\S+(?: \S+){0,2}) \(image (\d+)\)")


# --- The models, as the emulator reads them ---------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """What one hosted model accepts, from its row of the models file."""

    id: str
    durations: Mapping[str, int]  # as the field writes them ("5", "8s") -> seconds
    fields: Mapping[str, str]  # concept -> field name
    frames: Mapping[tuple[str, str], tuple[int, int]]  # (aspect_ratio, resolution) -> pixels
    min_images: int
    max_images: int
    audio: bool

    @property
    def app(self) -> str:
        return "/".join(self.id.split("/")[:2])

    def values(self, concept: str) -> tuple[str, ...]:
        index = 0 if concept == "aspect_ratio" else 1
        return tuple(dict.fromkeys(key[index] for key in self.frames))


def read_endpoints(path: Path = MODELS_FILE) -> dict[str, Endpoint]:
    with path.open("rb") as handle:
        rows = tomllib.load(handle).get("models") or []
    endpoints = {}
    for row in rows:
        frames = {}
        for size, shape in row["sizes"].items():
            width, height = (int(side) for side in size.split("x"))
            frames[(shape.get("aspect_ratio", ""), shape.get("resolution", ""))] = (width, height)
        pattern = row.get("duration_format", "{seconds}")
        endpoints[row["id"]] = Endpoint(
            id=row["id"],
            durations={pattern.format(seconds=s): int(s) for s in row["durations"]},
            fields=dict(row["fields"]),
            frames=frames,
            min_images=int(row.get("min_references", 0)),
            max_images=int(row.get("max_references", 0)),
            audio=bool(row.get("audio", False)),
        )
    return endpoints


# --- Validation errors, FastAPI style ---------------------------------------------------------


class Invalid(ApiError):
    """A 422 whose `detail` is a list of `{loc, msg, type, input?, ctx?}` problems."""

    def __init__(self, problems: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(status, "; ".join(p["msg"] for p in problems))
        self.detail = problems


def _problem(loc: list[Any], msg: str, kind: str, value: Any = None, **ctx: Any) -> dict:
    problem: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind}
    if value is not None:
        problem["input"] = value
    if ctx:
        problem["ctx"] = ctx
    return problem


def _choices(options: tuple[str, ...]) -> str:
    quoted = [f"'{option}'" for option in options]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --- Requests -----------------------------------------------------------------------------


@dataclass
class QueuedRequest:
    id: str
    endpoint: Endpoint
    prompt: str
    seconds: float
    size: tuple[int, int]
    cast: tuple[CastMember, ...]
    timeline: Timeline
    moderated: bool
    webhook_url: str | None
    fps: int
    ttl: int
    host: str  # the address the client reached us at: result links use it
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    seed: int = field(default_factory=lambda: secrets.randbelow(2**31))
    cancelled_at: float | None = None
    notified: bool = False  # its webhook has been queued (only the watcher writes it)
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        width, height = self.size
        return render_video(
            prompt=self.prompt,
            seconds=self.seconds,
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.endpoint.id} · {self.id}",
            drift=self.drift,
        )

    def phase(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        return self.timeline.phase(now)[0]

    def finished_at(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.timeline.finishes_at


class FalWebhookSender(WebhookSender):
    """WebhookSender's delivery and retries, with fal's envelope and Ed25519 signature:
    hex(sign(request_id \\n user_id \\n timestamp \\n sha256_hex(body)))."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = Ed25519PrivateKey.generate()
        self.key_id = secrets.token_hex(8)

    def rotate(self) -> None:
        self.key, self.key_id = Ed25519PrivateKey.generate(), secrets.token_hex(8)

    def jwks(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id}]}

    def send_event(self, *, url: str, event: Mapping[str, Any], copies: int = 1) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        for copy in range(1, max(1, copies) + 1):
            self._queue.put(
                _Delivery(
                    url=url,
                    secret=None,
                    event_id=str(event["request_id"]),
                    event_type=str(event["status"]),
                    object_id=str(event["request_id"]),
                    body=body,
                    copy=copy,
                )
            )

    def _post(self, delivery: _Delivery) -> tuple[int | None, str | None]:
        timestamp = str(int(time.time()))  # the receiver's wall clock judges it
        digest = hashlib.sha256(delivery.body).hexdigest()
        message = "\n".join((delivery.event_id, USER_ID, timestamp, digest)).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "castboard-emulator/1",
            "X-Fal-Webhook-Request-Id": delivery.event_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.key.sign(message).hex(),
        }
        request = urllib.request.Request(  # noqa: S310 - only http(s) URLs are accepted
            delivery.url, data=delivery.body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except OSError as exc:
            return None, str(exc)


class FalEmulator(NotifiesWhenDone, Emulator):
    name = "fal"
    watcher_name = "fal-webhooks"
    api_prefix = ""  # the queue answers at its root: https://queue.fal.run/{owner}/{app}

    def __init__(self, *, models_file: Path | None = None, **config: Any) -> None:
        self.endpoints = read_endpoints(models_file or MODELS_FILE)
        self.requests: Store[QueuedRequest] = Store()
        self.webhooks = FalWebhookSender()
        super().__init__(**{"asset_ttl_seconds": RESULT_TTL_SECONDS, **config})

    # --- Emulator hooks -------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        for endpoint in self.endpoints.values():
            router.add("POST", f"/{endpoint.id}", self.submit, op="create")
        requests = "/{owner}/{app}/requests/{request_id}"
        router.add("GET", f"{requests}/status", self.status, op="retrieve")
        router.add("GET", requests, self.result, op="retrieve")
        router.add("PUT", f"{requests}/cancel", self.cancel, op="delete")
        router.add("GET", "/files/{filename}", self.download, op="content", public=True)
        router.add("GET", "/.well-known/jwks.json", self.jwks, op=None)
        router.add("POST", "/_emulator/rotate_webhook_key", self.rotate_key, op=None)

    def credential(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "key" and token else None

    def render_error(self, error: ApiError) -> Response:
        detail: Any = error.detail if isinstance(error, Invalid) else error.message
        headers = list(error.headers)
        if isinstance(error, Invalid):
            headers.append(("X-Fal-Retryable", "false"))
        return json_response({"detail": detail}, error.status, headers=headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            return ApiError(401, "Missing authorization header. Send Authorization: Key <FAL_KEY>.")
        if kind == "invalid_api_key":
            return ApiError(401, "No user found for Key ID and Secret")
        if kind == "rate_limit":
            return ApiError(
                429,
                "Too many requests: the concurrent request limit of your account was reached.",
                headers=retry_after_headers(retry_after if retry_after is not None else 1.0),
            )
        if kind == "quota":
            return ApiError(
                403,
                "User is locked. Reason: Exhausted balance. "
                "Top up your balance at fal.ai/dashboard/billing.",
            )
        if kind == "unavailable":
            return ApiError(503, "Service Unavailable")
        if kind == "moderation":
            return Invalid([_policy_problem()])
        if kind == "not_found_route":
            return ApiError(404, "Application not found")
        return ApiError(500, "Internal Server Error")

    def clear_data(self) -> None:
        self.requests.clear()
        self.webhooks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "webhooks": {"deliveries": self.webhooks.records()},
        }

    # --- Submit ---------------------------------------------------------------------------

    def submit(self, request: Request) -> Response:
        endpoint = self.endpoints[request.path.lstrip("/")]
        body = request.json()
        problems: list[dict[str, Any]] = []
        webhook = request.query.get("fal_webhook")
        if webhook is not None:
            parts = urlsplit(webhook)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    _problem(["query", "fal_webhook"], "Input should be a valid URL", "url_parsing")
                )
        values, images = self._checked(endpoint, body, problems)
        if problems:
            raise Invalid(problems)
        prompt, markers = strip_markers(values["prompt"])
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        request_id = str(uuid.uuid4())
        queued = QueuedRequest(
            id=request_id,
            endpoint=endpoint,
            prompt=prompt,
            seconds=float(endpoint.durations[values["duration"]]),
            size=endpoint.frames[(values["aspect_ratio"], values["resolution"])],
            cast=_cast(prompt, images),
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                fails=moderated or markers.fail,
                fails_early=moderated,
            ),
            moderated=moderated,
            webhook_url=webhook,
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            host=request.host,
            drift=take_drift(markers, config, request_id),
        )
        self.requests.add(queued.id, queued)
        answer = {
            "request_id": queued.id,
            "gateway_request_id": queued.id,
            **self._urls(request, queued),
            "queue_position": self._position(queued, self.clock.now()),
        }
        return json_response(answer, job_id=queued.id)

    def _checked(
        self, endpoint: Endpoint, body: dict[str, Any], problems: list[dict[str, Any]]
    ) -> tuple[dict[str, str], list[tuple[str, Image.Image]]]:
        """The body's values by concept (defaults filled in) and the references' looks."""
        fields = endpoint.fields
        names = {name: concept for concept, name in fields.items()}
        for name in body:
            if name not in names:
                problems.append(
                    _problem(["body", name], "Extra inputs are not permitted", "extra_forbidden")
                )
        values: dict[str, str] = {}
        prompt = body.get(fields["prompt"])
        if prompt is None:
            problems.append(_problem(["body", fields["prompt"]], "Field required", "missing"))
        elif not isinstance(prompt, str) or not prompt.strip():
            problems.append(
                _problem(
                    ["body", fields["prompt"]],
                    "String should have at least 1 character",
                    "string_too_short",
                    prompt,
                )
            )
        values["prompt"] = prompt if isinstance(prompt, str) else ""
        first_frame = next(iter(endpoint.frames))
        defaults = {
            "duration": next(iter(endpoint.durations)),
            "aspect_ratio": first_frame[0],
            "resolution": first_frame[1],
        }
        for concept, options in (
            ("duration", tuple(endpoint.durations)),
            ("aspect_ratio", endpoint.values("aspect_ratio")),
            ("resolution", endpoint.values("resolution")),
        ):
            name = fields.get(concept)
            value = body.get(name, defaults[concept]) if name else defaults[concept]
            if name and value not in options:
                problems.append(
                    _problem(
                        ["body", name],
                        f"Input should be {_choices(options)}",
                        "literal_error",
                        value,
                        expected=_choices(options),
                    )
                )
            values[concept] = str(value)
        if not problems and (values["aspect_ratio"], values["resolution"]) not in endpoint.frames:
            problems.append(
                _problem(
                    ["body"],
                    f"Value error, {values['aspect_ratio']} is not offered at "
                    f"{values['resolution']}",
                    "value_error",
                )
            )
        audio_name = fields.get("generate_audio")
        if audio_name and not isinstance(body.get(audio_name, endpoint.audio), bool):
            problems.append(
                _problem(["body", audio_name], "Input should be a valid boolean", "bool_type")
            )
        return values, self._images(endpoint, body, problems)

    def _images(
        self, endpoint: Endpoint, body: dict[str, Any], problems: list[dict[str, Any]]
    ) -> list[tuple[str, Image.Image]]:
        """(colour, picture) per reference image that loads; a problem for each that fails."""
        fields = endpoint.fields
        name = fields.get("images") or fields.get("image")
        if name is None:
            return []
        raw = body.get(name)
        if "image" in fields:
            urls = [] if raw is None else [raw]
        elif raw is None:
            urls = []
        elif not isinstance(raw, list):
            problems.append(_problem(["body", name], "Input should be a valid list", "list_type"))
            return []
        else:
            urls = raw
        count, low, high = len(urls), endpoint.min_images, endpoint.max_images
        if count == 0 and low:
            problems.append(_problem(["body", name], "Field required", "missing"))
        elif count < low:
            problems.append(
                _problem(
                    ["body", name],
                    f"List should have at least {low} item after validation, not {count}",
                    "too_short",
                )
            )
        elif count > high:
            problems.append(
                _problem(
                    ["body", name],
                    f"List should have at most {high} items after validation, not {count}",
                    "too_long",
                )
            )
        looks = []
        for index, url in enumerate(urls):
            loc = ["body", name] if "image" in fields else ["body", name, index]
            look = _image_look(url)
            if look is None:
                problems.append(
                    _problem(
                        loc,
                        "Failed to load the image. Please ensure the image file is not "
                        "corrupted and is in a supported format.",
                        "image_load_error",
                        url if isinstance(url, str) and len(url) < 200 else None,
                    )
                )
            else:
                looks.append(look)
        return looks

    # --- Status, result, cancel -----------------------------------------------------------

    def _request(self, request: Request) -> QueuedRequest:
        app = f"{request.params['owner']}/{request.params['app']}"
        if app not in {endpoint.app for endpoint in self.endpoints.values()}:
            raise ApiError(404, f"Application '{app}' not found")
        found = self.requests.get(request.params["request_id"])
        if found is None or found.endpoint.app != app:
            raise ApiError(404, f"Request '{request.params['request_id']}' not found")
        return found

    def _urls(self, request: Request, queued: QueuedRequest) -> dict[str, str]:
        base = f"http://{request.host}/{queued.endpoint.app}/requests/{queued.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _position(self, queued: QueuedRequest, now: float) -> int:
        """How many of the same app's queued requests are ahead of this one (0: next)."""
        return sum(
            1
            for other in self.requests.values()
            if other.endpoint.app == queued.endpoint.app
            and other.phase(now) == QUEUED
            and other.timeline.started < queued.timeline.started
        )

    def status(self, request: Request) -> Response:
        queued = self._request(request)
        now = self.clock.now()
        phase = queued.phase(now)
        with_logs = request.query.get("logs", "").lower() in ("1", "true")
        urls = self._urls(request, queued)
        body: dict[str, Any] = {"request_id": queued.id, "response_url": urls["response_url"]}
        if phase == QUEUED:
            return json_response(
                {**body, "status": "IN_QUEUE", "queue_position": self._position(queued, now)}
            )
        logs = self._logs(queued, now) if with_logs else None
        if phase == RUNNING:
            return json_response({**body, "status": "IN_PROGRESS", "logs": logs})
        body |= {
            "status": "COMPLETED",
            "logs": logs,
            "metrics": {
                "inference_time": round(queued.finished_at() - queued.timeline.queued_until, 3)
            },
        }
        if phase == "cancelled":
            body |= {"error": "Request was cancelled.", "error_type": CANCELLED_TYPE}
        elif phase == FAILED:
            body |= (
                {"error": "Invalid status code: 422", "error_type": "content_policy_violation"}
                if queued.moderated
                else {"error": "Invalid status code: 500", "error_type": "internal_server_error"}
            )
        return json_response(body)

    def _logs(self, queued: QueuedRequest, now: float) -> list[dict[str, Any]]:
        timeline = queued.timeline
        span = max(timeline.finishes_at - timeline.queued_until, 1e-9)
        done = min(
            timeline.steps,
            int((min(now, timeline.finishes_at) - timeline.queued_until) / span * timeline.steps)
            + 1,
        )
        return [
            {
                "message": f"Generating video: step {step} of {timeline.steps}",
                "level": "INFO",
                "source": "user",
                "timestamp": time.strftime(
                    "%Y-%m-%dT%H:%M:%S",
                    time.gmtime(timeline.queued_until + span * (step - 1) / timeline.steps),
                ),
            }
            for step in range(1, done + 1)
        ]

    def result(self, request: Request) -> Response:
        queued = self._request(request)
        phase = queued.phase(self.clock.now())
        if phase in (QUEUED, RUNNING):
            raise ApiError(400, "Request is still in progress")
        if phase == "cancelled":
            raise ApiError(400, "Request was cancelled.")
        if phase == FAILED:
            return self.render_error(self._failure(queued))
        return json_response(self._output(queued.host, queued))

    def _failure(self, queued: QueuedRequest) -> Invalid:
        if queued.moderated:
            return Invalid([_policy_problem(queued.prompt)])
        return Invalid(
            [_problem([], "The model failed to generate the video.", "internal_server_error")],
            status=500,
        )

    def _output(self, host: str, queued: QueuedRequest) -> dict[str, Any]:
        video = queued.media.get().video
        return {
            "video": {
                "url": f"http://{host}/files/{queued.id}.mp4",
                "content_type": "video/mp4",
                "file_name": f"{queued.id}.mp4",
                "file_size": len(video),
            },
            "seed": queued.seed,
        }

    def cancel(self, request: Request) -> Response:
        """A queued request leaves the queue; a started one gets the signal, which a hosted
        video model ignores: it runs on to the end."""
        queued = self._request(request)
        now = self.clock.now()
        phase = queued.phase(now)
        if phase not in (QUEUED, RUNNING):
            return json_response({"status": "ALREADY_COMPLETED"}, 400)
        if phase == QUEUED:
            queued.cancelled_at = now
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)

    def download(self, request: Request) -> Response:
        filename = request.params["filename"]
        queued = self.requests.get(filename.removesuffix(".mp4"))
        now = self.clock.now()
        if not filename.endswith(".mp4") or queued is None or queued.phase(now) != SUCCEEDED:
            return Response(status=404, body=b"Not Found", content_type="text/plain")
        if now >= queued.finished_at() + queued.ttl:
            return Response(
                status=403, body=b"Forbidden: this link has expired.", content_type="text/plain"
            )
        return bytes_response(queued.media.get().video, "video/mp4")

    def jwks(self, request: Request) -> Response:
        return json_response(self.webhooks.jwks())

    def rotate_key(self, request: Request) -> Response:
        self.webhooks.rotate()
        return json_response(self.webhooks.jwks())

    # --- Webhooks -------------------------------------------------------------------------

    def notify_finished(self, now: float) -> None:
        """POST each finished request to its fal_webhook (cancelled ones send nothing)."""
        for queued in self.requests.values():
            if queued.notified or now < queued.finished_at():
                continue
            queued.notified = True
            if not queued.webhook_url or queued.cancelled_at is not None:
                continue
            event: dict[str, Any] = {"request_id": queued.id, "gateway_request_id": queued.id}
            if queued.phase(now) == SUCCEEDED:
                event |= {"status": "OK", "payload": self._output(queued.host, queued)}
            else:
                failure = self._failure(queued)
                event |= {
                    "status": "ERROR",
                    "error": f"Invalid status code: {failure.status}",
                    "payload": {"detail": failure.detail},
                }
            self.webhooks.send_event(
                url=queued.webhook_url, event=event, copies=self.config.webhook_duplicates
            )


def _image_look(url: Any) -> tuple[str, Image.Image] | None:
    """The main colour and the picture of a reference image (a data: URI or an http(s)
    link), or None if it cannot be loaded."""
    if not isinstance(url, str):
        return None
    try:
        if url.startswith("data:"):
            data = decode_data_url(url)
        else:
            data = fetch(url, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=FETCH_MAX_BYTES)
        if sniff_image(data) is None:
            return None
        image = open_image(data)
    except ValueError:
        return None
    return dominant_color(image), reference_picture(image)


def _cast(prompt: str, looks: list[tuple[str, Image.Image]]) -> tuple[CastMember, ...]:
    """A figure per character the prompt names ("Mina (image 1)"), from its first reference."""
    names = {}
    for match in _LABELLED.finditer(prompt):
        words = [w for w in match.group(1).split() if w[:1].isupper()] or match.group(1).split()
        names.setdefault(int(match.group(2)), words[-1])
    return figures(
        [
            (names.get(number), CastMember(names.get(number, f"image {number}"), color, picture))
            for number, (color, picture) in enumerate(looks, start=1)
        ]
    )
