"""The engine's rows: provider accounts, jobs and their states, registrations, webhook events.

Scene-agnostic: a job knows its workspace, its compiled request and its results;
whatever asked for it (a scene's take, a character registration) links to it.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from jobs import live
from jobs.crypto import decrypt_secret, encrypt_secret
from jobs.dialogue import prompt_template
from jobs.providers import ADAPTERS
from jobs.providers.base import PLACEHOLDER, Capabilities, SentRequest
from jobs.providers.transport import base_url_problem
from jobs.requests import FittedRequest


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI Videos API (or compatible gateway)"
    SORA_RELAY = "sora_relay", "Sora relay"
    SEEDANCE = "seedance", "ByteDance Seedance 2.0 (ModelArk)"
    KLING = "kling", "Kling (v3 Omni)"
    VEO = "veo", "Google Veo 3.1 (Vertex AI)"
    GEMINI = "gemini", "Google Gemini Omni Flash (Gemini API)"
    RUNWAY = "runway", "Runway"
    FAL = "fal", "fal.ai (hosted models)"
    ELEVENLABS = "elevenlabs", "ElevenLabs (text to speech)"


def _webhook_token() -> str:
    return secrets.token_urlsafe(24)


class ProviderAccount(models.Model):
    """A workspace's access to one provider: where it is, its key, its limits."""

    workspace = models.ForeignKey(
        settings.JOBS_WORKSPACE_MODEL, on_delete=models.CASCADE, related_name="provider_accounts"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    base_url = models.URLField(max_length=300)
    model = models.CharField(max_length=80, blank=True, help_text="For example sora-2.")
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_hint = models.CharField(max_length=12, blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    # The path of this account's webhook endpoint: unguessable, one per account.
    webhook_token = models.CharField(
        max_length=40, unique=True, default=_webhook_token, editable=False
    )
    enabled = models.BooleanField(default=True)
    callbacks = models.BooleanField(
        default=False,
        help_text="Ask the provider to call back when a video is done (Kling, fal.ai, Gemini "
        "take a callback address with each request). Needs PUBLIC_BASE_URL to be reachable "
        "from the provider; polling stays as the safety net.",
    )
    concurrency_limit = models.PositiveSmallIntegerField(
        default=4, help_text="Jobs in flight at once; more wait in line, unpaid."
    )
    price_override = models.DecimalField(
        max_digits=14,
        decimal_places=10,
        null=True,
        blank=True,
        help_text="This account's price per unit (second, video or token), if it differs from "
        "the price book: a negotiated rate or a gateway's own price.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        """The base URL must be a public address (or in PROVIDER_ALLOWED_NETWORKS): the
        worker sends requests there with this account's key."""
        problem = base_url_problem(self.base_url) if self.base_url else None
        if problem:
            raise ValidationError({"base_url": problem})

    @property
    def capabilities(self) -> Capabilities:
        """What this account's provider can make (declared by its adapter)."""
        return ADAPTERS[self.kind].capabilities_for(self.model)

    def set_api_key(self, plaintext: str) -> None:
        """Store a key encrypted; only its last four characters stay readable."""
        self.api_key_encrypted = encrypt_secret(plaintext) if plaintext else ""
        self.api_key_hint = (
            f"…{plaintext[-4:]}" if len(plaintext) >= 8 else ("…" if plaintext else "")
        )

    def api_key(self) -> str:
        return decrypt_secret(self.api_key_encrypted) if self.api_key_encrypted else ""

    def set_webhook_secret(self, plaintext: str) -> None:
        self.webhook_secret_encrypted = encrypt_secret(plaintext) if plaintext else ""

    def webhook_secret(self) -> str:
        return (
            decrypt_secret(self.webhook_secret_encrypted) if self.webhook_secret_encrypted else ""
        )

    @property
    def sends_callbacks(self) -> bool:
        """Each create carries our callback address (the provider takes one per request)."""
        return self.callbacks and self.capabilities.callback_per_request

    @property
    def has_webhooks(self) -> bool:
        """Completions arrive by webhook, so polling slows to a safety net."""
        return bool(self.webhook_secret_encrypted) or self.sends_callbacks

    def callback_url(self) -> str:
        """Where this account's provider reports completions (the token authenticates it)."""
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        return f"{base}{reverse('provider_webhook', args=[self.webhook_token])}"


class JobState(models.TextChoices):
    PENDING = "pending", "Waiting"
    SUBMITTING = "submitting", "Sending"
    QUEUED = "queued", "Queued at provider"
    RUNNING = "running", "Generating"
    DOWNLOADING = "downloading", "Downloading"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Checking with provider"


# Rank of each state: a job only ever moves to a higher rank. UNKNOWN sits with
# SUBMITTING (it is resolved forward from there by reconciliation).
STATE_RANK = {
    JobState.PENDING: 0,
    JobState.SUBMITTING: 1,
    JobState.UNKNOWN: 1,
    JobState.QUEUED: 2,
    JobState.RUNNING: 3,
    JobState.DOWNLOADING: 4,
    JobState.SUCCEEDED: 5,
    JobState.FAILED: 5,
    JobState.CANCELLED: 5,
}
TERMINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
IN_FLIGHT_STATES = (JobState.SUBMITTING, JobState.UNKNOWN, JobState.QUEUED, JobState.RUNNING)


class JobKind(models.TextChoices):
    GENERATE = "generate", "Generate"
    REMIX = "remix", "Remix"
    EXTEND = "extend", "Extend"
    REGISTER_CHARACTER = "register_character", "Register character"
    SPEECH = "speech", "Speech"


class ErrorCode(models.TextChoices):
    MODERATION = "moderation", "Blocked by moderation"
    INVALID_REQUEST = "invalid_request", "Invalid request"
    RATE_LIMIT = "rate_limit", "Rate limited"
    QUOTA = "quota", "Out of quota"
    PROVIDER_ERROR = "provider_error", "Provider error"
    AUTH = "auth", "Key refused"
    GENERATION_FAILED = "generation_failed", "Generation failed"
    UNCONFIRMED = "unconfirmed", "Submission unconfirmed"
    RESULT_INVALID = "result_invalid", "Result unusable"
    REGISTRATION_FAILED = "registration_failed", "Character registration failed"
    ABANDONED = "abandoned", "Abandoned at a provider that cannot stop it"


def _result_path(job: Job, filename: str) -> str:
    return f"workspaces/{job.workspace_id}/jobs/{job.pk}/{filename}"


class Job(models.Model):
    workspace = models.ForeignKey(
        settings.JOBS_WORKSPACE_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    # RESTRICT: an account with jobs stays (their costs and results refer to it),
    # unless its whole workspace goes.
    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.RESTRICT, related_name="jobs"
    )
    kind = models.CharField(max_length=20, choices=JobKind.choices, default=JobKind.GENERATE)
    # What Castboard asked for, compiled for this provider (before registrations
    # were resolved) and, once sent, exactly what went over the wire.
    request = models.JSONField(default=dict)
    sent_payload = models.JSONField(null=True, blank=True)
    state = models.CharField(
        max_length=12, choices=JobState.choices, default=JobState.PENDING, db_index=True
    )
    # Long where the provider names jobs by path (a Vertex AI operation is ~150 characters).
    provider_job_id = models.CharField(max_length=255, blank=True, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=24, choices=ErrorCode.choices, blank=True)
    error_message = models.TextField(blank=True)
    cost_estimate = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    cost_actual = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    video = models.FileField(upload_to=_result_path, max_length=300, blank=True)
    thumbnail = models.FileField(upload_to=_result_path, max_length=300, blank=True)
    spritesheet = models.FileField(upload_to=_result_path, max_length=300, blank=True)
    # A speech job's result (a video job's is `video`).
    audio = models.FileField(upload_to=_result_path, max_length=300, blank=True)
    # Facts about the result (duration, size, codec) or a registration's external id.
    result = models.JSONField(default=dict, blank=True)
    # When the sweep should next look at this job (poll, retry a submit, resume a download).
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A waiting job may not be sent before this (a rate limit's Retry-After, a backoff).
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The task delivery that claimed the job's current step (send or download). If that
    # delivery comes back (its worker process died and Celery requeued it), the step was
    # lost with the process and is taken over at once, not after its lease.
    claimed_by = models.CharField(max_length=64, blank=True, editable=False)
    # When a freed lane slot was last promised to this waiting job (its send is on the way):
    # jobs finishing together each hand their slot to a different waiting job.
    woken_at = models.DateTimeField(null=True, blank=True, editable=False)
    poll_count = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How the provider was chosen: {"policy", "reason", "degraded", "fallbacks": [...]}.
    routing = models.JSONField(default=dict, blank=True)
    # The budget besides the workspace's that this job counts against, e.g. "series:12".
    budget_scope = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_poll_at"], name="job_due_idx")]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.kind}, {self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def sent(self) -> SentRequest | None:
        """What went over the wire, in the provider's own words (None until it was sent)."""
        if not self.sent_payload:
            return None
        return ADAPTERS[self.provider_account.kind].describe_sent(self.sent_payload)

    @property
    def prompt(self) -> str:
        """The prompt as the provider read it; before it was sent, the one that will go."""
        sent = self.sent
        if sent is not None and sent.prompt:
            return sent.prompt
        return self.prompt_to_send

    @property
    def job_request(self) -> FittedRequest:
        """The request as the engine reads it (jobs.requests); RequestShapeError if malformed."""
        return FittedRequest.from_dict(self.request)

    @property
    def prompt_to_send(self) -> str:
        """The compiled prompt with each character placeholder shown as its @handle, and its
        dialogue where the provider speaks (what will go; a speech job's words as they are)."""
        request = self.job_request.request
        handles = {m.subject: f"@{m.handle or m.name}" for m in request.cast}
        # The account is read only for dialogue: a page listing jobs makes no query more.
        speaks = bool(request.dialogue) and self.provider_account.capabilities.audio
        template = prompt_template(request, speaks=speaks)
        return PLACEHOLDER.sub(lambda m: handles.get(m.group(1), m.group(0)), template)

    def move(self, to: str, *, only_from: tuple[str, ...] | None = None, **fields) -> bool:
        """Move forward to `to` with a conditional UPDATE; False if another worker moved first.

        The row is only changed when its current state ranks below `to` (and is in
        `only_from` when given), so late or duplicate polls and webhooks are harmless.
        """
        allowed = [s for s, rank in STATE_RANK.items() if rank < STATE_RANK[to]]
        if to == JobState.UNKNOWN:
            allowed = [JobState.SUBMITTING]
        if only_from is not None:
            allowed = [s for s in allowed if s in only_from]
        fields["updated_at"] = timezone.now()
        if to in TERMINAL_STATES:
            fields.setdefault("finished_at", timezone.now())
        moved = Job.objects.filter(pk=self.pk, state__in=allowed).update(state=to, **fields)
        if moved:
            self.state = to
            for name, value in fields.items():
                setattr(self, name, value)
            live.announce_changed(self.pk, workspace_id=self.workspace_id)
        return bool(moved)


class Registration(models.Model):
    """Something (a character) made known to a provider, under the provider's own id.

    The subject is a plain key such as "character:12", so the engine never
    imports the character library: it stays reusable for anything registrable.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"

    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.CASCADE, related_name="registrations"
    )
    subject = models.CharField(max_length=60)
    external_id = models.CharField(max_length=255, blank=True)
    external_name = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    error_message = models.TextField(blank=True)
    source = models.CharField(
        max_length=200, blank=True, help_text="The clip or take it came from."
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="registrations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_account", "subject"],
                condition=models.Q(status="active"),
                name="one_active_registration_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.provider_account}: {self.external_id or self.status}"


class WebhookEvent(models.Model):
    """A verified webhook delivery, stored once by its event id."""

    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.CASCADE, related_name="webhook_events"
    )
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=60)
    provider_job_id = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_account", "event_id"], name="webhook_event_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class PriceUnit(models.TextChoices):
    SECOND = "second", "per second of video"
    REQUEST = "request", "per video"
    TOKEN = "token", "per token"
    CREDIT = "credit", "per credit"
    CHARACTER = "character", "per character created"


class PriceEntry(models.Model):
    """One line of the price book: what a provider charges per unit, for a model and size.

    Blank model or size means any; the most specific line wins (jobs.prices). Seeded
    with the figures in PROVIDERS.md, editable in the admin, overridden per account by
    ProviderAccount.price_override.
    """

    provider_kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    model = models.CharField(max_length=80, blank=True, help_text="Blank: any model.")
    size = models.CharField(max_length=12, blank=True, help_text="Blank: any size.")
    unit = models.CharField(max_length=10, choices=PriceUnit.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=10)
    source = models.CharField(max_length=200, blank=True, help_text="Where the figure comes from.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_kind", "model", "size", "unit"]
        verbose_name_plural = "price book"
        constraints = [
            models.UniqueConstraint(
                fields=["provider_kind", "model", "size", "unit"], name="one_price_per_line"
            ),
        ]

    def __str__(self) -> str:
        what = " ".join(part for part in (self.model, self.size) if part) or "any"
        amount = f"{self.amount.normalize():f}"
        return f"{self.get_provider_kind_display()} {what}: {amount} {self.get_unit_display()}"


class Budget(models.Model):
    """A hard cap on what a workspace (per month) or one of its series may spend.

    The scope is "workspace" or a plain key such as "series:12" (jobs never imports
    series): a job counts against the workspace's budget and the one its
    budget_scope names.
    """

    class Period(models.TextChoices):
        MONTH = "month", "per calendar month"
        TOTAL = "total", "in all"

    workspace = models.ForeignKey(
        settings.JOBS_WORKSPACE_MODEL, on_delete=models.CASCADE, related_name="budgets"
    )
    scope = models.CharField(max_length=40, default="workspace")
    label = models.CharField(max_length=200, blank=True)
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    cap = models.DecimalField(max_digits=12, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "scope"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "scope"], name="one_budget_per_scope"),
            models.CheckConstraint(condition=models.Q(cap__gte=0), name="budget_cap_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.scope}: {self.cap} {self.get_period_display()}"


class LedgerEntry(models.Model):
    """Money promised or spent: a job reserves its estimate, then on ending releases it
    and is charged what it cost. Append-only; a job is released and charged once.

    A hold (no job, a `hold` key) reserves a batch's whole estimate at once, checked once
    against the budgets; each job started under it moves its share out of the hold (the
    job's reserve and the hold's release together), and what is left is released at the
    end. Budgets count a hold like any reservation."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserved"
        RELEASE = "release", "Released"
        CHARGE = "charge", "Charged"

    workspace = models.ForeignKey(
        settings.JOBS_WORKSPACE_MODEL, on_delete=models.CASCADE, related_name="ledger_entries"
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="ledger_entries"
    )
    # None for a hold, which may cover several accounts.
    provider_account = models.ForeignKey(
        ProviderAccount,
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="ledger_entries",
    )
    # A hold's key (its caller's, e.g. "batch:12"); blank for a job's entries.
    hold = models.CharField(max_length=60, blank=True, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    # The month the job was requested in (budgets count a job against that month).
    period = models.CharField(max_length=7, db_index=True)
    scope = models.CharField(max_length=40, blank=True)  # the job's budget_scope
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["job", "kind"],
                condition=models.Q(kind__in=["release", "charge"]),
                name="release_and_charge_once",
            ),
            # An entry is a job's or a hold's, never both.
            models.CheckConstraint(
                condition=models.Q(job__isnull=False, hold="")
                | models.Q(job__isnull=True) & ~models.Q(hold=""),
                name="ledger_entry_of_a_job_or_a_hold",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "period"], name="ledger_workspace_period"),
            models.Index(fields=["workspace", "scope", "period"], name="ledger_scope_period"),
        ]

    def __str__(self) -> str:
        owner = f"job {self.job_id}" if self.job_id else f"hold {self.hold}"
        return f"{self.get_kind_display()} {self.amount} for {owner}"
