"""The engine's one entry point for the domain: quote a request at an account, rank the
accounts for it, and start its job; derive, retry and register from finished jobs; list a
speech account's voices.

The domain passes what it knows as plain data (jobs.requests: a prompt template with
`{{subject}}` placeholders, and the cast with its images and clips in library order).
Everything about providers happens here: validating against the adapter, fitting the
cast to the account's capabilities (references within its limits, or the clip that
registers each member), and pricing. Nothing here knows scenes or characters.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from jobs import breaker, ledger, prices, routing, services, video_files
from jobs.compiled import Compiled
from jobs.frames import frame_references
from jobs.models import Job, ProviderAccount, Registration
from jobs.providers import provider_for
from jobs.providers.base import (
    PLACEHOLDER,
    Capabilities,
    GenerationRequest,
    Provider,
    ProviderError,
    Reference,
)
from jobs.providers.speech import SpeechProvider
from jobs.requests import (
    AUDIO,
    DERIVED_KINDS,
    EXTEND,
    FIRST,
    GENERATE,
    IMAGE,
    LAST,
    REGISTER_CHARACTER,
    REMIX,
    SPEECH,
    VIDEO,
    Asset,
    CastAsset,
    CastMember,
    Fallback,
    Fit,
    FittedRequest,
    Frame,
    JobRequest,
    Line,
    RequestShapeError,
    Voice,
)
from jobs.signing import public_file_url

# The types of what routes() answers, for callers that annotate with them.
Ranking = routing.Ranking
BreakerState = breaker.BreakerState

__all__ = [
    "AUDIO",
    "EXTEND",
    "GENERATE",
    "IMAGE",
    "REGISTER_CHARACTER",
    "REMIX",
    "SPEECH",
    "VIDEO",
    "Asset",
    "BreakerState",
    "CastAsset",
    "CastMember",
    "Fallback",
    "Fit",
    "FittedRequest",
    "Frame",
    "JobRequest",
    "Line",
    "OverBudget",
    "ProviderError",
    "Quote",
    "Ranking",
    "RequestShapeError",
    "RouteBook",
    "Routes",
    "Voice",
    "VoiceChoice",
    "cut_span",
    "derive",
    "hold",
    "hold_left",
    "hold_release",
    "makes",
    "placeholder",
    "quote",
    "register_from_job",
    "registration_jobs",
    "retry",
    "routes",
    "span_window",
    "start",
    "voices",
]

# A budget refused the estimate (nothing was created); its message says which and by how much.
OverBudget = ledger.OverBudget
# Holds: a batch's whole estimate reserved at once (start(hold=...) draws from it).
hold = ledger.hold_take
hold_left = ledger.hold_left
hold_release = ledger.hold_release


def placeholder(subject: str) -> str:
    """How a prompt template names a cast member, e.g. {{character:12}}."""
    text = f"{{{{{subject}}}}}"
    if not PLACEHOLDER.fullmatch(text):
        raise ValueError(
            f"{subject!r} cannot be named in a prompt: use kind:number (kind:number:vN for a "
            "version)."
        )
    return text


# --- Quoting: validate, fit, price ---------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A request at one account: as it would travel there, its price, and why it cannot go.

    `fitted` is None for a refusal made before anything could be fitted: a request the
    domain could not build (an unknown @handle), a remix where the provider makes none.
    """

    account: ProviderAccount
    fitted: FittedRequest | None
    estimate: Decimal
    problems: list[str] = field(default_factory=list)

    @classmethod
    def refused(cls, account: ProviderAccount, problems: Sequence[str]) -> Quote:
        return cls(account=account, fitted=None, estimate=Decimal("0"), problems=list(problems))

    @property
    def request(self) -> JobRequest | None:
        return None if self.fitted is None else self.fitted.request

    @property
    def fit(self) -> Fit:
        return Fit() if self.fitted is None else self.fitted.fit

    @property
    def degraded_note(self) -> str:
        """Where the cast travels as references (no saved characters there), how."""
        return self.fit.degraded_note

    def as_fallback(self) -> Fallback:
        return Fallback(account_id=self.account.pk, estimate=self.estimate, fit=self.fit)


def makes(request: JobRequest | None) -> str:
    """What a request asks to be made: "speech" for a speech job, else "video" (the value of
    Capabilities.output of the providers that can make it)."""
    return "speech" if request is not None and request.kind == SPEECH else "video"


def quote(request: JobRequest, account: ProviderAccount, *, book: RouteBook | None = None) -> Quote:
    """The request fitted to the account, validated against its provider and priced.

    With a `book` (many requests quoted at the same accounts), the adapter, the account's
    registrations and its prices are read once for all of them; without, a book of its own."""
    if book is None:
        with RouteBook([account]) as own:
            return quote(request, account, book=own)
    provider = book.provider(account)
    output, wanted = provider.capabilities.output, makes(request)
    if output != wanted:
        return Quote.refused(account, [f"{provider.label} makes {output}, not {wanted}."])
    if isinstance(provider, SpeechProvider):
        return _quote_speech(request, account, provider)
    if request.kind in DERIVED_KINDS:
        return _quote_derived(request, account, provider)
    if request.kind == REGISTER_CHARACTER:
        return _quote_registration(request, account, provider)
    if provider.capabilities.native_characters:
        found = _quote_with_characters(request, account, provider, book)
    else:
        found = _quote_with_references(request, account, provider, book)
    return replace(found, problems=[*_frame_problems(request, provider), *found.problems])


_FRAME_WORDS = {FIRST: "start a video from a given picture", LAST: "end a video on a given picture"}


def _frame_problems(request: JobRequest, provider: Provider) -> list[str]:
    """Why the provider cannot take the request's frames (it takes only those it declares)."""
    return [
        f"{provider.label} cannot {_FRAME_WORDS[frame.position]}."
        for frame in request.frames
        if frame.position not in provider.capabilities.frames
    ]


def _quote_speech(request: JobRequest, account: ProviderAccount, provider: SpeechProvider) -> Quote:
    """Words in a voice: priced by what speaking them costs (ElevenLabs: a credit a
    character). A voice made from a sample costs nothing more (it is made once per account)."""
    problems = provider.speech_problems(request.prompt)
    voice = request.voice
    if voice is not None and not voice.voice_id and not provider.capabilities.voice_samples:
        problems.append(
            f"{provider.label} cannot make a voice from a sample: pick one of its own voices."
        )
    estimate = prices.speech_estimate(account, provider, text=request.prompt)
    return Quote(account, FittedRequest(request), estimate, problems)


def _fitting_clip(member: CastMember, window: tuple[float, float] | None) -> Asset | None:
    low, high = window or (0.0, float("inf"))
    return next((c for c in member.clips if low <= (c.seconds or 0) <= high), None)


def _clip_for(member: CastMember, window: tuple[float, float] | None) -> Asset | None:
    """The member's clip that best fits the provider's window (a longer one gets cut)."""
    if not member.clips:
        return None
    if not window:
        return member.clips[0]
    fitting = _fitting_clip(member, window)
    if fitting is not None:
        return fitting
    return next((c for c in member.clips if (c.seconds or 0) > window[1]), None)


def _as_references(
    cast: Sequence[CastMember], caps: Capabilities, label: str
) -> tuple[Fit, list[str]]:
    """The cast as reference images (and clips) within the provider's limits, and what is
    missing. Each member gets an equal share of the images the provider takes, its first
    ones (the library's order), and a clip where the provider takes clips and one fits."""
    if not cast:
        return Fit(), []
    share = caps.max_references // len(cast) if caps.max_references else 0
    references: list[CastAsset] = []
    problems: list[str] = []
    clips = 0
    for member in cast:
        chosen = list(member.images[:share])
        if clips < caps.max_reference_clips:
            clip = _fitting_clip(member, caps.reference_clip_seconds)
            if clip is not None:
                chosen.append(clip)
                clips += 1
        if not chosen:
            problems.append(
                f"{label} has no saved characters, so it needs a reference image of "
                f"{member.name} (@{member.handle}); add one in the character library."
                if share
                else f"{label} takes too few references for {len(cast)} characters."
            )
        references.extend(CastAsset(subject=member.subject, asset=asset) for asset in chosen)
    images = sum(1 for r in references if r.asset.kind == IMAGE)
    parts = [f"{images} reference image{'s' if images != 1 else ''}"]
    if clips:
        parts.append(f"{clips} clip{'s' if clips != 1 else ''}")
    names = ", ".join(m.name for m in cast)
    note = (
        f"{names} travel{'s' if len(cast) == 1 else ''} as {' and '.join(parts)}: "
        f"{label} has no saved characters, so consistency rests on the references."
    )
    return Fit(references=tuple(references), degraded_note=note), problems


def _quote_with_references(
    request: JobRequest, account: ProviderAccount, provider: Provider, book: RouteBook
) -> Quote:
    """At a provider that keeps no characters: the cast travels as references."""
    # The same cast at the same account fits the same way, whatever the prompt.
    key = (account.pk, request.cast)
    if key not in book.fits:
        book.fits[key] = _as_references(request.cast, provider.capabilities, provider.label)
    fit, missing = book.fits[key]
    problems = provider.validate(
        GenerationRequest(
            prompt=request.prompt,
            seconds=request.seconds,
            size=request.size,
            references=(
                *frame_references(request, taken=provider.capabilities.frames),
                *(
                    Reference(kind=r.asset.kind, url=book.file_url(r.asset.file))
                    for r in fit.references
                ),
            ),
        )
    )
    estimate = book.estimate(account, provider, seconds=request.seconds, size=request.size)
    return Quote(account, FittedRequest(request, fit), estimate, problems + missing)


def _quote_with_characters(
    request: JobRequest, account: ProviderAccount, provider: Provider, book: RouteBook
) -> Quote:
    """At a provider that keeps characters: each member is registered there from a clip
    (once; the price includes the registrations still to make)."""
    caps = provider.capabilities
    subjects = [m.subject for m in request.cast]
    problems = provider.validate(
        GenerationRequest(
            prompt=request.prompt,
            seconds=request.seconds,
            size=request.size,
            character_ids=tuple(subjects),
            references=frame_references(request, taken=provider.capabilities.frames),
        )
    )
    registered = book.registered(account, subjects)
    clips: list[CastAsset] = []
    to_register = 0
    for member in request.cast:
        # The clip travels even when the member is registered already: if the provider
        # has lost it by the time the job is sent, it registers it again.
        clip = _clip_for(member, caps.character_clip_seconds)
        if clip is not None:
            clips.append(CastAsset(subject=member.subject, asset=clip))
        if member.subject in registered:
            continue
        if clip is None and not (caps.character_images and member.images):
            problems.append(_unregistrable(member, caps, provider.label))
        else:
            to_register += 1
    estimate = book.estimate(
        account,
        provider,
        seconds=request.seconds,
        size=request.size,
        characters_to_register=to_register,
    )
    fitted = FittedRequest(request, Fit(registration_clips=tuple(clips)))
    return Quote(account, fitted, estimate, problems)


# Every route book of a workspace with native characters reads them: compiled once per
# process (jobs.compiled).
_active_registrations = Compiled(
    lambda account_ids: Registration.objects.filter(
        provider_account_id__in=account_ids, status=Registration.Status.ACTIVE
    ).values_list("provider_account_id", "subject")
)


def _registered(account_id: int, subjects: Sequence[str]) -> set[str]:
    """Which of the subjects the account keeps as characters now."""
    return set(
        Registration.objects.filter(
            provider_account_id=account_id,
            status=Registration.Status.ACTIVE,
            subject__in=list(subjects),
        ).values_list("subject", flat=True)
    )


def _unregistrable(member: CastMember, caps: Capabilities, label: str) -> str:
    """Why a member cannot be made a character at this provider: what it would need."""
    who = f"{member.name} (@{member.handle})"
    if caps.character_images and not caps.character_clip_seconds:
        return (
            f"{who} has no reference image; {label} makes characters from pictures. "
            "Add one in the character library."
        )
    low, high = caps.character_clip_seconds or (1, 30)
    pictures = " or a reference image" if caps.character_images else ""
    return (
        f"{who} has no reference clip of at least {low:g} s{pictures}; {label} makes "
        f"characters from a {low:g}-{high:g} s clip{pictures and ' or pictures'}. "
        "Add one in the character library."
    )


def _quote_derived(request: JobRequest, account: ProviderAccount, provider: Provider) -> Quote:
    """A remix or extension, at the provider that made its source."""
    caps = provider.capabilities
    if request.kind == REMIX and not caps.remix:
        return Quote.refused(account, [f"{provider.label} cannot remix videos."])
    if request.kind == EXTEND and not caps.extend_seconds:
        return Quote.refused(account, [f"{provider.label} cannot extend videos."])
    problems = provider.validate(
        GenerationRequest(
            prompt=request.prompt, seconds=request.seconds, size=request.size, kind=request.kind
        )
    )
    estimate = prices.estimate(account, provider, seconds=request.seconds, size=request.size)
    return Quote(account, FittedRequest(request), estimate, problems)


def _quote_registration(request: JobRequest, account: ProviderAccount, provider: Provider) -> Quote:
    """Registering the one member: from its finished job at the provider where it names
    one (and the provider can), else from its first clip. Not reserved (as ever)."""
    (member,) = request.cast
    if not provider.capabilities.native_characters:
        return Quote.refused(account, [f"{provider.label} keeps no characters."])
    clips = ()
    if not member.from_provider_job_id and member.clips:
        clips = (CastAsset(subject=member.subject, asset=member.clips[0]),)
    fitted = FittedRequest(request, Fit(registration_clips=clips))
    return Quote(account, fitted, Decimal("0"), [])


# --- Routing: every account's quote, ranked --------------------------------------------------


@dataclass(frozen=True)
class Routes:
    """Every account's quote for one request, ranked by a routing policy (jobs.routing)."""

    policy: str
    accounts: list[ProviderAccount]
    quotes: dict[int, Quote]
    ranking: routing.Ranking
    breakers: dict[int, breaker.BreakerState]

    @property
    def chosen(self) -> Quote | None:
        option = self.ranking.chosen
        return None if option is None else self.quotes[option.account_id]

    def fallbacks(self) -> tuple[Fallback, ...]:
        """The capable accounts after the chosen one, best first, as a job carries them."""
        return tuple(self.quotes[o.account_id].as_fallback() for o in self.ranking.ordered[1:])


class RouteBook:
    """What routing many requests at the same accounts shares, read once for all of them:
    each account's adapter, circuit breaker, recent health (stability policy), active
    registrations and prices. A generate-all routes hundreds of scenes with it in a
    constant number of queries. Use it as a context manager (it closes the adapters)."""

    def __init__(self, accounts: Sequence[ProviderAccount]) -> None:
        self.accounts = list(accounts)
        self.estimates: dict[tuple, Decimal] = {}
        self.file_urls: dict[str, str] = {}
        self.fits: dict[tuple, tuple[Fit, list[str]]] = {}
        self._providers: dict[int, Provider] = {}
        self._breakers: dict[int, breaker.BreakerState] | None = None
        self._health: dict[int, routing.Health] | None = None
        self._registered: dict[int, set[str]] | None = None

    def __enter__(self) -> RouteBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()
        self._providers.clear()

    def provider(self, account: ProviderAccount) -> Provider:
        found = self._providers.get(account.pk)
        if found is None:
            found = self._providers[account.pk] = provider_for(account)
        return found

    def breakers(self) -> dict[int, breaker.BreakerState]:
        if self._breakers is None:
            self._breakers = {a.pk: breaker.state(a.pk) for a in self.accounts}
        return self._breakers

    def health(self) -> dict[int, routing.Health]:
        if self._health is None:
            self._health = routing.health_of(a.pk for a in self.accounts)
        return self._health

    def file_url(self, name: str) -> str:
        """public_file_url, signed once per file (a cast's pictures recur in every scene it
        plays in; signing was most of a quote's time)."""
        found = self.file_urls.get(name)
        if found is None:
            found = self.file_urls[name] = public_file_url(name)
        return found

    def estimate(
        self,
        account: ProviderAccount,
        provider: Provider,
        *,
        seconds: int,
        size: str,
        characters_to_register: int = 0,
    ) -> Decimal:
        """prices.estimate, read once per (account, length, size, registrations)."""
        key = (account.pk, seconds, size, characters_to_register)
        found = self.estimates.get(key)
        if found is None:
            found = self.estimates[key] = prices.estimate(
                account,
                provider,
                seconds=seconds,
                size=size,
                characters_to_register=characters_to_register,
            )
        return found

    def registered(self, account: ProviderAccount, subjects: Sequence[str]) -> set[str]:
        if self._registered is None:
            native = [a.pk for a in self.accounts if a.capabilities.native_characters]
            self._registered = {pk: set() for pk in native}
            rows = _active_registrations(account_ids=native)
            for account_id, subject in rows:
                self._registered[account_id].add(subject)
        if account.pk not in self._registered:  # an account the book was not made with
            return _registered(account.pk, subjects)
        return self._registered[account.pk] & set(subjects)

    def routes(
        self,
        request: JobRequest | None,
        *,
        policy: str,
        pinned_account_id: int | None = None,
        problems: Sequence[str] = (),
        output: str = "",
    ) -> Routes:
        """Quote the request at every account that makes what it asks for (a video, or
        speech: the others are left out, not listed as unable) and rank them by the policy.

        Without a request (the domain could not build one), every account gets `problems`,
        and `output` says which accounts to list ("video" unless told).
        """
        wanted = output or makes(request)
        accounts = [a for a in self.accounts if a.capabilities.output == wanted]
        health = self.health() if policy == routing.STABILITY else {}
        every_breaker = self.breakers()
        breakers = {a.pk: every_breaker[a.pk] for a in accounts}
        quotes, options = {}, []
        for account in accounts:
            found = (
                Quote.refused(account, problems)
                if request is None
                else quote(request, account, book=self)
            )
            quotes[account.pk] = found
            options.append(
                routing.Option(
                    account_id=account.pk,
                    name=account.name,
                    estimate=found.estimate,
                    native_characters=account.capabilities.native_characters,
                    problems=tuple(found.problems),
                    health=health.get(account.pk, routing.Health()),
                    breaker_open=breakers[account.pk].is_open,
                )
            )
        ranking = routing.rank(
            options,
            policy=policy,
            # A speech job's cast is its speaker: no saved characters are asked of the account.
            mentions_characters=bool(request and request.cast and request.kind != SPEECH),
            pinned_account_id=pinned_account_id,
        )
        return Routes(policy, accounts, quotes, ranking, breakers)


def routes(
    request: JobRequest | None,
    *,
    accounts: Sequence[ProviderAccount],
    policy: str,
    pinned_account_id: int | None = None,
    problems: Sequence[str] = (),
    output: str = "",
) -> Routes:
    """One request's routes (RouteBook.routes); many requests share a RouteBook instead."""
    wanted = output or makes(request)
    # Only the accounts that make what is asked are read (breakers, health), as ever.
    with RouteBook([a for a in accounts if a.capabilities.output == wanted]) as book:
        return book.routes(
            request,
            policy=policy,
            pinned_account_id=pinned_account_id,
            problems=problems,
            output=output,
        )


# --- Starting jobs ---------------------------------------------------------------------------


def start(
    quote: Quote,
    *,
    policy: str,
    reason: str,
    fallbacks: Sequence[Fallback] = (),
    budget_scope: str = "",
    hold: str = "",
) -> Job:
    """Reserve the quote's estimate and create its job at the quote's account (PENDING,
    sent when the transaction commits), carrying `fallbacks` for while it is down.

    `policy` and `reason` say how the account was chosen (Job.routing). Under a `hold`
    (ledger.hold_take) the reservation moves out of the hold, whose budgets were checked
    already. Raises OverBudget, creating nothing, when the estimate does not fit a budget.
    """
    if quote.fitted is None or quote.problems:
        raise ValueError(f"This request cannot go to {quote.account.name}: {quote.problems}")
    fitted = replace(quote.fitted, fallbacks=tuple(fallbacks))
    return services.job_create(
        workspace=quote.account.workspace,
        account=quote.account,
        request=fitted.to_dict(),
        kind=fitted.request.kind,
        cost_estimate=quote.estimate,
        routing={
            "policy": policy,
            "reason": reason,
            "degraded": fitted.fit.degraded,
            "degraded_note": fitted.fit.degraded_note,
            "fallbacks": [],
        },
        budget_scope=budget_scope,
        hold=hold,
    )


def derive(job: Job, *, kind: str, prompt: str, seconds: int | None = None) -> Quote:
    """A remix or an extension of a finished job, quoted at the account that made it.

    Remix: the source's length. Extend: `seconds` is the length of the segment to add.
    """
    if kind not in DERIVED_KINDS:
        raise ValueError(f"A job is remixed or extended, not {kind!r}.")
    if not job.provider_job_id:
        return Quote.refused(
            job.provider_account, ["Its provider never named this video, so it cannot be reused."]
        )
    source = job.job_request.request
    request = JobRequest(
        kind=kind,
        prompt=prompt,
        seconds=source.seconds if seconds is None else seconds,
        size=source.size,
        source_provider_job_id=job.provider_job_id,
    )
    return quote(request, job.provider_account)


def retry(job: Job, *, reason: str, budget_scope: str = "") -> Job:
    """A new job sending a stopped job's request again, unchanged (its estimate and its
    fallbacks too), at the same account. Raises OverBudget as start() does."""
    fitted = job.job_request
    return services.job_create(
        workspace=job.workspace,
        account=job.provider_account,
        request=fitted.to_dict(),
        kind=job.kind,
        cost_estimate=job.cost_estimate,
        routing={**job.routing, "fallbacks": [], "reason": reason},
        budget_scope=job.budget_scope or budget_scope,
    )


# --- Registering from a finished job ---------------------------------------------------------


def registration_jobs(*, subject: str) -> QuerySet[Job]:
    """The jobs that register `subject`, at any account and in any state."""
    # A registration's cast is its one member (jobs.requests.JobRequest).
    return Job.objects.filter(kind=REGISTER_CHARACTER, request__cast__0__subject=subject)


def span_window(account: ProviderAccount) -> tuple[float, float]:
    """How long a span of a video made at this account may be to show a cast member there:
    the provider's window for registering one, or (where it keeps none) for a reference clip."""
    caps = account.capabilities
    if caps.native_characters:
        return caps.character_clip_seconds or (1.0, 30.0)
    return caps.reference_clip_seconds or (1.0, float(settings.REFERENCE_CLIP_MAX_SECONDS))


def cut_span(
    job: Job, *, start: float, end: float, stills_at: Sequence[float]
) -> tuple[bytes, list[bytes]]:
    """[start, end) of a finished job's video as an MP4 clip, and stills from that clip at
    the given fractions of it. Raises ValueError, in plain words, when it cannot."""
    with tempfile.TemporaryDirectory(prefix="castboard-cut-") as folder:
        path = Path(folder) / "video.mp4"
        with default_storage.open(job.video.name, "rb") as stored, path.open("wb") as out:
            for chunk in stored.chunks():
                out.write(chunk)
        clip = video_files.cut_clip(path, start=start, end=end)
        cut = Path(folder) / "cut.mp4"
        cut.write_bytes(clip)
        return clip, video_files.stills(cut, list(stills_at))


def register_from_job(job: Job, *, member: CastMember, budget_scope: str = "") -> Job | None:
    """Register `member` at the account that made the finished `job`, from a span of it
    (the member's first clip); None where that account keeps no characters.

    A provider that takes characters straight from its finished jobs (the relay) learns it
    from the job itself.
    """
    caps = job.provider_account.capabilities
    if not caps.native_characters:
        return None
    if caps.character_from_job and job.provider_job_id:
        member = replace(member, from_provider_job_id=job.provider_job_id)
    request = JobRequest(kind=REGISTER_CHARACTER, prompt="", seconds=0, size="", cast=(member,))
    found = quote(request, job.provider_account)
    if found.fitted is None:
        raise ValueError(" ".join(found.problems))
    return services.job_create(
        workspace=job.workspace,
        account=job.provider_account,
        request=found.fitted.to_dict(),
        kind=REGISTER_CHARACTER,
        budget_scope=budget_scope,
    )


# --- Voices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceChoice:
    """One voice a speech account can speak in, for a voice picker."""

    voice_id: str
    name: str
    category: str  # ElevenLabs: premade, cloned, generated, professional
    preview_url: str  # the provider's own address of a short sample ("" if none)


def voices(account: ProviderAccount) -> list[VoiceChoice]:
    """The voices of a speech account, as its provider lists them now (a free call, through
    the guarded client). Raises ProviderError, in plain words, when it cannot say."""
    provider = provider_for(account)
    try:
        if not isinstance(provider, SpeechProvider):
            raise ProviderError(
                "invalid", f"{provider.label} makes video, not speech: it has no voices."
            )
        return [
            VoiceChoice(v.voice_id, v.name, v.category, v.preview_url)
            for v in provider.list_voices()
            if v.voice_id
        ]
    finally:
        provider.close()
