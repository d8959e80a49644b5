"""Calling the gateways over real HTTP as a script would, and checking every exchange
against the protocol's published spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
import yaml
from django.conf import settings
from openai import OpenAI
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import data_form_loads
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.jobs.factories import build_studio

OPENAI_BASE = "/gateway/openai/v1"
# CI copies /work/shared next to the repository, as ../shared.
OPENAI_SPEC = Path(settings.BASE_DIR).parent / "shared" / "specs" / "openai-videos.openapi.yaml"
# Where accounts of a studio that never generates point: nothing listens there.
NOWHERE = "http://127.0.0.1:9/v1"
# What a content answer may be, by the spec (its schema is just binary).
CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/webp"}


@pytest.fixture(scope="session")
def openai_spec_document() -> dict:
    if not OPENAI_SPEC.exists():
        pytest.skip(f"The OpenAI Videos spec is not at {OPENAI_SPEC} (CI copies it there).")
    return yaml.safe_load(OPENAI_SPEC.read_text())


def _multipart_as_text(value: bytes, **parameters: str) -> ImmutableMultiDict:
    """A multipart body as openapi-core reads one, but each part as text: it keeps a file's
    part as bytes, which no `type: string` schema accepts (OpenAPI 3.1 describes a file as a
    binary string), so every upload would fail. The parts' names and presence still count."""
    form = data_form_loads(value, **parameters)
    return ImmutableMultiDict(
        [
            (name, part.decode("utf-8", errors="replace") if isinstance(part, bytes) else part)
            for name, part in form.items(multi=True)
        ]
    )


@dataclass
class _SpecRequest:
    """An HTTP request as openapi-core reads one (its Request protocol)."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


@dataclass
class _SpecResponse:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes


def _spec_request(request: httpx.Request | httpx2.Request) -> _SpecRequest:
    url = urlsplit(str(request.url))
    return _SpecRequest(
        host_url=f"{url.scheme}://{url.netloc}",
        path=url.path,
        method=request.method.lower(),
        body=request.read() or None,
        content_type=request.headers.get("Content-Type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        ),
    )


def _spec_response(response: httpx.Response | httpx2.Response) -> _SpecResponse:
    return _SpecResponse(
        status_code=response.status_code,
        content_type=response.headers.get("Content-Type", ""),
        headers=Headers(dict(response.headers)),
        data=response.content,
    )


class OpenAIGateway:
    """Clients of the gateway (the official SDK, or plain httpx) that keep every exchange,
    and the check of those exchanges against OpenAI's spec."""

    def __init__(self, server_url: str, document: dict) -> None:
        self.base_url = f"{server_url}{OPENAI_BASE}"
        self.spec = OpenAPI.from_dict(
            {**document, "servers": [{"url": self.base_url}]},
            config=Config(
                extra_media_type_deserializers={"multipart/form-data": _multipart_as_text}
            ),
        )
        self.exchanges: list[Any] = []
        self._clients: list[httpx.Client | httpx2.Client] = []

    def _keep(self, response: httpx.Response | httpx2.Response) -> None:
        response.read()
        self.exchanges.append(response)

    def sdk(self, token: str) -> OpenAI:
        """The official SDK, retries off (as a script making paid calls should have them)."""
        http = httpx2.Client(timeout=30, event_hooks={"response": [self._keep]})
        self._clients.append(http)
        return OpenAI(base_url=self.base_url, api_key=token, max_retries=0, http_client=http)

    def http(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=30,
            event_hooks={"response": [self._keep]},
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def check(self) -> list[tuple[str, str, int]]:
        """Every exchange so far against the spec: a request with a token as the spec
        describes it; a 200 answer as its schema says (a download: a type the spec lists);
        any other answer an OpenAI error. Returns (method, path, status) of each."""
        seen = []
        for response in self.exchanges:
            request = _spec_request(response.request)
            answer = _spec_response(response)
            where = f"{request.method.upper()} {request.path}"
            if "authorization" in request.parameters.header:
                self.spec.validate_request(request)
            if answer.status_code == 200 and request.path.endswith("/content"):
                variant = request.parameters.query.get("variant", "video")
                assert answer.content_type == CONTENT_TYPES[variant], where
                assert answer.data, where
            elif answer.status_code == 200:
                self.spec.validate_response(request, answer)
            else:
                assert_openai_error(response)
            seen.append((request.method.upper(), request.path, answer.status_code))
        return seen


def assert_openai_error(response: httpx.Response | httpx2.Response) -> dict:
    """The body is OpenAI's error object, with a message in words; returns the error."""
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str), error
    assert len(error["message"]) > 10, error  # words, not a bare code
    assert isinstance(error["type"], str), error
    assert isinstance(error["code"], str), error
    return error


@pytest.fixture
def gateway(live_server, openai_spec_document) -> Iterator[OpenAIGateway]:
    gateway = OpenAIGateway(live_server.url, openai_spec_document)
    yield gateway
    gateway.close()


@pytest.fixture
def quiet_studio(live_server, settings) -> dict:
    """build_studio's workspace (a series, Mina, an OpenAI and a relay account) with no
    worker and its accounts pointing nowhere: for calls that make nothing, or only start a
    take."""
    settings.PUBLIC_BASE_URL = live_server.url
    return build_studio(openai_url=NOWHERE, relay_url=NOWHERE)
