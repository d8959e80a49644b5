"""What every request to the API and the gateways goes through, in order:

1. the token (`Authorization: Bearer cb_…`): none or a revoked one is a 401;
2. the token's rate limit (settings.RATE_LIMIT_API): over it is a 429 with Retry-After;
3. `Idempotency-Key` on a POST: the first answer is kept and a repeat gets it again
   without running anything (a different request under the same key is a 422, one still
   being answered a 409);
4. the call log (ApiCall): method, path, status and time of every call, for the studio.

Errors are written the way the caller's protocol writes them: problem details for
/api/v1/, OpenAI's `{"error": {…}}` for the OpenAI gateway, the relay's for the relay's.
The schema and the interactive docs are open, like any published API reference.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from studio.api import tokens
from studio.api.problems import problem
from studio.models import ApiCall, ApiToken, IdempotentAnswer
from studio.project import ratelimit

API = "/api/v1/"
OPENAI = "/gateway/openai/v1/"
RELAY = "/gateway/relay/v1/"
OPEN_PATHS = (f"{API}openapi.json", f"{API}docs")
KEY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Answer headers a replay repeats (besides the body and its type).
KEPT_HEADERS = ("Location", "openai-poll-after-ms")
# The relay's own names for the refusals every family shares.
RELAY_CODES = {"invalid_api_key": "unauthorized", "rate_limit_exceeded": "rate_limited"}
# A key whose first request never finished (the process died) is answered 409 for this long.
RUNNING_FOR = timedelta(minutes=5)


def family_of(path: str) -> str | None:
    for prefix, family in ((API, "api"), (OPENAI, "openai"), (RELAY, "relay")):
        if path.startswith(prefix):
            return family
    return None


def error(
    family: str,
    status: int,
    message: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """An error in the caller's protocol."""
    if family == "api":
        return problem(status, message, kind=code.replace("_", "-"), headers=headers)
    if family == "relay":
        code = RELAY_CODES.get(code, code)
    if family == "openai":
        kind = {401: "invalid_request_error", 429: "rate_limit_error"}.get(
            status, "invalid_request_error" if status < 500 else "server_error"
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    else:
        body = {"error": {"message": message, "code": code}}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        family = family_of(request.path)
        if family is None or request.path.startswith(OPEN_PATHS):
            return self.get_response(request)
        started = time.monotonic()
        token = tokens.authenticate(request)
        if token is None:
            return error(
                family,
                401,
                "Send a Castboard API token as 'Authorization: Bearer cb_…'; an owner makes "
                "one under the workspace's API page. This one is missing, unknown or revoked.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": 'Bearer realm="castboard"'},
            )
        request.api_token = token
        if _carries_nul(request):
            response = error(
                family,
                422 if family == "api" else 400,
                "Text may not contain NUL characters; nothing was done.",
                code="invalid_text",
            )
            _log(request, token, response, started, "", False)
            return response
        refusal = ratelimit.hit(
            "api:token",
            str(token.pk),
            ratelimit.Rate.parse(settings.RATE_LIMIT_API, setting="RATE_LIMIT_API"),
        )
        key = request.headers.get(KEY_HEADER, "") if request.method == "POST" else ""
        replayed = False
        if refusal is not None:
            response = error(
                family,
                429,
                f"This token made too many requests in a short while; nothing was done. "
                f"Try again in {refusal.wait_in_words}.",
                code="rate_limit_exceeded",
                headers={"Retry-After": refusal.retry_after_header},
            )
        elif key:
            response, replayed = self._idempotent(request, token, key, family)
        else:
            response = self.get_response(request)
        _log(request, token, response, started, key, replayed)
        return response

    def _idempotent(
        self, request: HttpRequest, token: ApiToken, key: str, family: str
    ) -> tuple[HttpResponse, bool]:
        if len(key) > MAX_KEY_LENGTH:
            return error(
                family, 400, "An Idempotency-Key is at most 255 characters.", code="invalid_key"
            ), False
        fingerprint = _fingerprint(request)
        try:
            with transaction.atomic():
                answer = IdempotentAnswer.objects.create(
                    token=token,
                    key=key,
                    method=request.method,
                    path=request.get_full_path()[:300],
                    fingerprint=fingerprint,
                )
        except IntegrityError:
            first = IdempotentAnswer.objects.filter(token=token, key=key).first()
            if first is None:  # the first was answered with nothing to keep (below) just now
                return error(
                    family,
                    409,
                    "The first request with this Idempotency-Key was just answered; send it again.",
                    code="idempotency_key_in_use",
                    headers={"Retry-After": "1"},
                ), False
            return self._repeat(first, fingerprint, family), first.state == first.State.DONE
        response = self.get_response(request)
        if getattr(response, "streaming", False) or response.status_code == 429:
            # Nothing paid answers with a stream; keep no body rather than consume it. A 429
            # (a generation limit) did nothing and says to try again later: kept, the retry
            # the caller is told to make would get the same 429 for ever.
            IdempotentAnswer.objects.filter(pk=answer.pk).delete()
            return response, False
        IdempotentAnswer.objects.filter(pk=answer.pk).update(
            state=IdempotentAnswer.State.DONE,
            status=response.status_code,
            content_type=response.get("Content-Type", ""),
            body=response.content,
            headers={name: response[name] for name in KEPT_HEADERS if name in response},
        )
        return response, False

    def _repeat(self, first: IdempotentAnswer, fingerprint: str, family: str) -> HttpResponse:
        if first.fingerprint != fingerprint:
            return error(
                family,
                422,
                f"This Idempotency-Key was first used for {first.method} {first.path} with "
                "another body; use a new key for a new request.",
                code="idempotency_key_reused",
            )
        if first.state == first.State.RUNNING:
            stale = timezone.now() - first.created_at > RUNNING_FOR
            return error(
                family,
                409,
                (
                    "The first request with this Idempotency-Key never finished; whether it "
                    "made anything is unknown. List your takes to see, then use a new key."
                )
                if stale
                else "The first request with this Idempotency-Key is still being answered.",
                code="idempotency_key_in_use",
                headers={} if stale else {"Retry-After": "1"},
            )
        response = HttpResponse(
            bytes(first.body), status=first.status, content_type=first.content_type or None
        )
        for name, value in first.headers.items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response


def _carries_nul(request: HttpRequest) -> bool:
    """A NUL character in the query or a JSON/form body: no database column can hold one
    (PostgreSQL refuses it), so it is refused up front rather than failing later. Uploads
    are binary and are not looked at."""
    if "%00" in request.META.get("QUERY_STRING", "") or "\x00" in request.path:
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/") or request.method in ("GET", "HEAD", "DELETE"):
        return False
    body = request.body
    if content_type.startswith("application/x-www-form-urlencoded"):
        return b"%00" in body
    return b"\\u0000" in body or b"\x00" in body


def _fingerprint(request: HttpRequest) -> str:
    """What makes two POSTs the same: the path and the body. A multipart upload is read as a
    stream later, so it is compared by its size and type (its boundary left out)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    if content_type.startswith("multipart/"):
        digest.update(f"multipart {request.META.get('CONTENT_LENGTH', '')}".encode())
    else:
        digest.update(content_type.split(";")[0].encode())
        digest.update(request.body)
    return digest.hexdigest()


def _log(
    request: HttpRequest,
    token: ApiToken,
    response: HttpResponse,
    started: float,
    key: str,
    replayed: bool,
) -> None:
    ApiCall.objects.create(
        token=token,
        method=request.method[:8],
        path=request.get_full_path()[:300],
        status=response.status_code,
        duration_ms=int((time.monotonic() - started) * 1000),
        idempotency_key=key[:255],
        replayed=replayed,
    )


def json_body(request: HttpRequest) -> dict:
    """The request's JSON object body ({} for none); ValueError when it is not one."""
    if not request.body:
        return {}
    value = json.loads(request.body)
    if not isinstance(value, dict):
        raise ValueError("The body must be a JSON object.")
    return value
