"""How providers fail, in the engine's words: shared by the base adapter and the HTTP helper."""

from __future__ import annotations

from typing import Literal

# "not_ready": a result that exists but cannot be downloaded yet (OpenAI's video_not_ready).
ErrorKind = Literal[
    "moderation",
    "invalid",
    "rate_limit",
    "quota",
    "unavailable",
    "auth",
    "not_found",
    "not_ready",
    "timeout",
]


class ProviderError(Exception):
    """A refusal or failure from a provider, classified for the pipeline."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        code: str = "",
        maybe_accepted: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status_code = status_code
        self.code = code
        # True when a create may have reached the provider (timeout, reset, 5xx after
        # sending): the job must be reconciled, never re-sent blindly.
        self.maybe_accepted = maybe_accepted


class WebhookRejected(Exception):
    """A webhook whose signature or timestamp does not verify."""
