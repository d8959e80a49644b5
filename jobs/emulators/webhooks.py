"""Standard Webhooks (https://www.standardwebhooks.com): signing and a retrying sender.

OpenAI, Replicate and Gemini sign webhooks this way, so the signer lives here
rather than in one emulator. It is written from the scheme, not shared with
Castboard's verifier: an emulator that reused the app's code could not catch a
bug in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_<base64>` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("A webhook secret starts with 'whsec_'.")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("A webhook secret is 'whsec_' followed by base64.") from exc
    if not key:
        raise ValueError("A webhook secret needs a non-empty key.")
    return key


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` + base64(HMAC-SHA256(key, id.ts.body))."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class _Delivery:
    url: str
    secret: str | None
    event_id: str
    event_type: str
    object_id: str
    body: bytes
    copy: int


class WebhookSender:
    """Delivers events from 16 background threads, retrying non-2xx answers with backoff.

    Providers deliver concurrently (ten videos finishing together are ten POSTs at once,
    not a queue), so a receiver's latency per event does not add up across events; and
    a redelivered copy may arrive while the first is still being handled, as it can from
    a real provider. Every attempt is recorded so tests and demos can see what was sent.
    Duplicate copies carry the same event id and body (as a provider's redelivery would),
    each signed with its own send-time timestamp.
    """

    def __init__(
        self,
        *,
        retry_delays: tuple[float, ...] = (0.1, 0.3, 0.9),
        timeout_seconds: float = 5.0,
        senders: int = 16,
    ) -> None:
        self._retry_delays = retry_delays
        self._timeout = timeout_seconds
        self._senders = senders
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self._threads:
            self._stopping.clear()
            self._threads = [
                threading.Thread(target=self._run, name=f"webhooks-{n}", daemon=True)
                for n in range(self._senders)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def send(
        self,
        *,
        url: str,
        secret: str | None,
        event: Mapping[str, Any],
        copies: int = 1,
    ) -> None:
        """Queue `copies` deliveries of one event envelope (it needs `id`, `type`, `data.id`)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        for copy in range(1, max(1, copies) + 1):
            self._queue.put(
                _Delivery(
                    url=url,
                    secret=secret,
                    event_id=event["id"],
                    event_type=event["type"],
                    object_id=event["data"]["id"],
                    body=body,
                    copy=copy,
                )
            )

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _run(self) -> None:
        while not self._stopping.is_set():
            delivery = self._queue.get()
            if delivery is None:
                return
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        for attempt in range(1, len(self._retry_delays) + 2):
            status, error = self._post(delivery)
            ok = status is not None and 200 <= status < 300
            with self._lock:
                self._records.append(
                    {
                        "event_id": delivery.event_id,
                        "type": delivery.event_type,
                        "object_id": delivery.object_id,
                        "copy": delivery.copy,
                        "attempt": attempt,
                        "status": status,
                        "ok": ok,
                        "error": error,
                        "at": time.time(),
                    }
                )
            if ok or attempt > len(self._retry_delays):
                return
            if self._stopping.wait(self._retry_delays[attempt - 1]):
                return

    def _post(self, delivery: _Delivery) -> tuple[int | None, str | None]:
        # Receivers compare the timestamp with their own wall clock (300 s tolerance),
        # so it is real time even when the emulator clock has been advanced.
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "castboard-emulator/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
        }
        if delivery.secret:
            headers["webhook-signature"] = sign(
                delivery.secret,
                message_id=delivery.event_id,
                timestamp=timestamp,
                body=delivery.body,
            )
        request = urllib.request.Request(  # noqa: S310 - config only accepts http(s) URLs
            delivery.url, data=delivery.body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            return None, str(exc)


class NotifiesWhenDone:
    """For an emulator that tells a receiver when a job ends (webhooks, callbacks): its
    `notify_finished(now)` runs every 50 ms on a thread of its own while it serves, and its
    sender starts and stops with it. Mixed in before Emulator, whose `stopping` and `clock`
    it uses."""

    watcher_name = "emulator-events"
    watch_every_seconds = 0.05
    _watcher: threading.Thread | None = None

    def notify_finished(self, now: float) -> None:
        raise NotImplementedError

    def event_sender(self) -> WebhookSender:
        return self.webhooks  # type: ignore[attr-defined]

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        self.event_sender().start()
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name=self.watcher_name, daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self.event_sender().stop()

    def _watch(self) -> None:
        while not self.stopping.wait(self.watch_every_seconds):  # type: ignore[attr-defined]
            self.notify_finished(self.clock.now())  # type: ignore[attr-defined]
