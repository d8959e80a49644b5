"""Sending one request to a provider and classifying what came back.

No retries happen here: the pipeline decides, because only it knows whether a
create may already have been accepted (and so must never be sent again).
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from typing import Any

import httpx

from jobs.netguard import AddressRefused
from jobs.providers.errors import ProviderError
from jobs.providers.transport import guarded_client

_clients: dict[tuple[int, float], httpx.Client] = {}
_clients_lock = threading.Lock()


def shared_client(timeout: float) -> httpx.Client:
    """A connection-pooling client shared within this process (keyed by pid: workers fork)."""
    key = (os.getpid(), timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            client = _clients[key] = guarded_client(timeout)
        return client


def send_once(
    http: httpx.Client, method: str, url: str, *, safe: bool = False, **kwargs: Any
) -> httpx.Response:
    """One HTTP request. `safe` marks reads, which may be repeated without cost.

    A failure after the request may have reached the provider is flagged
    `maybe_accepted` for unsafe requests.
    """
    try:
        return http.request(method, url, **kwargs)
    except AddressRefused as refused:
        # Nothing was sent: the account (or the provider's link) points somewhere we do
        # not go. A setting to change, not an outage: no retry, no breaker.
        raise ProviderError("invalid", refused.message, code="address_refused") from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
        raise ProviderError("unavailable", f"Could not reach the provider ({error}).") from error
    except httpx.TimeoutException as error:
        raise ProviderError(
            "timeout", "The provider did not answer in time.", maybe_accepted=not safe
        ) from error
    except httpx.TransportError as error:
        raise ProviderError(
            "unavailable",
            f"The connection to the provider broke ({error}).",
            maybe_accepted=not safe,
        ) from error


def _retry_after(response: httpx.Response) -> float | None:
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_text(body: object) -> tuple[str, str]:
    """(code, message) from OpenAI's {"error": {...}} or a relay's {"error": "..."}."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or ""), str(
                error.get("message") or ""
            )
        if isinstance(error, str):
            return "", error
    return "", ""


def classify_response(response: httpx.Response, *, provider: str) -> dict:
    """The JSON body of a success, or a ProviderError saying what went wrong in plain words."""
    if response.status_code < 400:
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                "unavailable", f"{provider} answered with something that is not JSON."
            ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = _error_text(body)
    status = response.status_code
    detail = message or response.reason_phrase or f"HTTP {status}"
    if status == 429:
        quota = "quota" in code or "quota" in message.lower()
        return _raise(
            "quota" if quota else "rate_limit",
            f"{provider}: {'out of quota' if quota else 'rate limited'}: {detail}",
            response,
            code,
        )
    if "moderation" in code:
        return _raise("moderation", detail, response, code)
    if status in (401, 403):
        return _raise("auth", f"{provider} refused the API key: {detail}", response, code)
    if status == 404:
        return _raise("not_found", f"{provider}: not found: {detail}", response, code)
    if status < 500:
        return _raise("invalid", f"{provider} refused the request: {detail}", response, code)
    # 503 means the request was not processed; other 5xx leave it open whether a
    # create took effect.
    return _raise(
        "unavailable",
        f"{provider} is having trouble (HTTP {status}): {detail}",
        response,
        code,
        maybe_accepted=status != 503 and response.request.method == "POST",
    )


def _raise(
    kind: str, message: str, response: httpx.Response, code: str, *, maybe_accepted: bool = False
) -> dict:
    raise ProviderError(
        kind,  # type: ignore[arg-type]
        message,
        retry_after=_retry_after(response),
        status_code=response.status_code,
        code=code,
        maybe_accepted=maybe_accepted,
    )
