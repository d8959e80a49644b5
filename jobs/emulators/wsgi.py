"""The HTTP layer the emulators share: requests, bodies, responses, routing and a server.

Plain WSGI on the standard library, so an emulator runs the same inside a test,
under `manage.py run_emulators`, or on its own.
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl
from wsgiref import simple_server

# Uploads larger than this are refused before they are read into memory.
MAX_BODY_BYTES = 100 * 1024 * 1024


class ApiError(Exception):
    """An error answer; each emulator renders it in its provider's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # OpenAI's error field is called `type`
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.headers = list(headers)


class DropConnection(Exception):
    """Raised by an app to close the connection without sending any response."""


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    host: str
    params: dict[str, str] = field(default_factory=dict)  # from the route's {placeholders}
    # Set by the dispatcher when a queued "moderation" fault applies to this request.
    forced_moderation: bool = False

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        length_text = environ.get("CONTENT_LENGTH") or "0"
        length = int(length_text) if length_text.isdigit() else 0
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "The request body is too large.")
        body = environ["wsgi.input"].read(length) if length else b""
        host = headers.get("host") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO") or "/",
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            headers=headers,
            body=body,
            host=host,
        )

    @property
    def mime_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is an empty object."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request. The body must be valid JSON.",
                code="invalid_json",
            ) from exc
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
        return data

    def payload(self) -> dict[str, Any]:
        """A JSON or multipart body as one dict: files become UploadedFile values."""
        if self.mime_type == "multipart/form-data":
            return parse_multipart(self.body, self.headers.get("content-type", ""))
        if self.mime_type in ("", "application/json") or self.mime_type.endswith("+json"):
            return self.json()
        raise ApiError(
            400,
            f"Unsupported content type '{self.mime_type}': send application/json "
            "or multipart/form-data.",
            code="unsupported_content_type",
        )


def parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Parse multipart/form-data; bracketed names (`video[id]`) become nested values."""
    header = BytesHeaderParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    )
    boundary = header["content-type"].params.get("boundary")
    if not boundary:
        raise ApiError(400, "The multipart body has no boundary.", code="invalid_multipart")
    items: list[tuple[str, Any]] = []
    # A delimiter is CRLF + "--" + boundary; prefixing CRLF makes the first one match too.
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    for section in sections[1:]:
        line_end = section.find(b"\r\n")
        if section.startswith(b"--") or line_end < 0:
            break  # the closing delimiter
        head, sep, content = section[line_end + 2 :].partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "A multipart section has no headers.", code="invalid_multipart")
        part = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
        disposition = part["content-disposition"]
        name = disposition.params.get("name") if disposition is not None else None
        if not name:
            raise ApiError(400, "A multipart section has no name.", code="invalid_multipart")
        filename = disposition.params.get("filename")
        if filename is not None:
            value: Any = UploadedFile(
                filename=filename,
                content_type=part.get_content_type() if part["content-type"] else "",
                data=content,
            )
        else:
            try:
                value = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, f"The field '{name}' is not UTF-8 text.", param=name) from exc
        items.append((name, value))
    return unflatten(items)


_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_NESTED_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")


def unflatten(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Turn form names like `video[id]`, `characters[0][id]` or `characters[][id]` into nesting.

    SDKs flatten nested objects this way when they have to send multipart.
    """
    out: dict[str, Any] = {}
    for key, value in items:
        match = _NESTED_KEY.match(key)
        if match is None:
            out[key] = value
            continue
        path = [match.group(1), *_BRACKETS.findall(match.group(2))]
        try:
            _assign(out, path, value)
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise ApiError(400, f"The field '{key}' conflicts with another.", param=key) from exc
    return out


def _assign(root: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = root
    for index, part in enumerate(path):
        last = index == len(path) - 1
        following = None if last else path[index + 1]
        wants_list = following is not None and (following == "" or following.isdigit())
        fresh: Any = [] if wants_list else {}
        if isinstance(node, list):
            if part == "":
                if last:
                    node.append(value)
                    return
                # `a[][id]` twice means two elements; `a[][id]` then `a[][name]` means one.
                if not node or not isinstance(node[-1], dict) or following in node[-1]:
                    node.append(fresh)
                node = node[-1]
                continue
            position = int(part)
            while len(node) <= position:
                node.append(None)
            if last:
                node[position] = value
                return
            if node[position] is None:
                node[position] = fresh
            node = node[position]
            continue
        if last:
            node[part] = value
            return
        if not isinstance(node.get(part), list | dict):
            node[part] = fresh
        node = node[part]


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = None  # required when body is an iterable
    job_id: str | None = None  # what a create produced, for the request log


def json_response(
    data: Any,
    status: int = 200,
    *,
    headers: Iterable[tuple[str, str]] = (),
    job_id: str | None = None,
) -> Response:
    return Response(
        status=status,
        body=json.dumps(data).encode(),
        headers=list(headers),
        job_id=job_id,
    )


def bytes_response(data: bytes, content_type: str) -> Response:
    return Response(status=200, body=data, content_type=content_type)


def stream_response(chunks: Iterable[bytes], *, length: int, content_type: str) -> Response:
    """A body sent chunk by chunk with a known length, so huge files never sit in memory."""
    return Response(status=200, body=chunks, content_type=content_type, length=length)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    op: str | None  # the fault/counter name; None for control endpoints
    public: bool = False  # no auth, outage or rate limit (a CDN-style file URL)


class Router:
    """Method + path templates like `/v1/videos/{video_id}`; the first match wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        op: str | None,
        public: bool = False,
    ) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self._routes.append(Route(method, re.compile(f"^{regex}$"), handler, op, public))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                return route, match.groupdict()
        return None


class _ServerHandler(simple_server.ServerHandler):
    def handle_error(self) -> None:
        # DropConnection means "say nothing": the socket closes once the handler returns.
        if isinstance(sys.exc_info()[1], DropConnection):
            return
        super().handle_error()


class _RequestHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator keeps its own request log

    def handle(self) -> None:
        # As WSGIRequestHandler.handle, with a handler that can drop the connection.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self
        handler.run(self.server.get_app())


class ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True  # a held ("timeout") connection must not block shutdown
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is normal in fault tests; anything else is printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(host: str, port: int, app: Callable[..., Iterable[bytes]]) -> ThreadingWSGIServer:
    server = ThreadingWSGIServer((host, port), _RequestHandler)
    server.set_app(app)
    return server
