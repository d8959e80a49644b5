"""Speech jobs at a speech provider, the parts that are not job states (jobs.pipeline has
those): the voice a job speaks in, made once per account from its sample like a character;
the words as the provider is asked for them; the audio stored and measured; and a synthesis
whose answer was lost, found again in the provider's history.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.locks import shared_lock
from jobs.models import Job, JobKind, Registration
from jobs.providers.base import ProviderError
from jobs.providers.speech import (
    Speech,
    SpeechItem,
    SpeechProvider,
    SpeechRequest,
    VoiceInfo,
    VoiceSample,
)
from jobs.requests import Voice
from jobs.video_files import ResultUnusable


def speech_request(job: Job, voice_id: str) -> SpeechRequest:
    """The job's words, in the voice the provider knows as `voice_id`."""
    return SpeechRequest(text=job.job_request.request.prompt, voice_id=voice_id)


# --- The voice -------------------------------------------------------------------------------


def ensure_voice(
    job: Job, provider: SpeechProvider, *, hold: Callable[[float], None]
) -> Registration | None:
    """The registration of the voice the job speaks in, made now from its sample if the
    account has none yet (jobs sent together make it once); None where the request names
    the provider's own voice id. `hold(extra_seconds)` keeps the job's send claimed while
    it waits for another job making the same voice, or makes it."""
    voice = job.job_request.request.voice
    if voice is None or voice.voice_id:
        return None
    active = Registration.objects.filter(
        provider_account_id=job.provider_account_id,
        status=Registration.Status.ACTIVE,
        subject=voice.subject,
    )
    existing = active.first()
    if existing is not None:
        return existing
    wait = settings.JOBS_PROVIDER_TIMEOUT_SECONDS + 10
    hold(wait)
    with shared_lock(
        f"register:{job.provider_account_id}:{voice.subject}", hold_seconds=wait, wait_seconds=wait
    ):
        existing = active.first()
        if existing is not None:
            return existing
        hold(0)  # one provider call from now
        return _make_voice(job, provider, voice)


def _make_voice(job: Job, provider: SpeechProvider, voice: Voice) -> Registration:
    """Make the voice from its sample; an add that may have gone through is looked up first."""
    if voice.sample is None:  # a Voice has an id or a sample (jobs.requests)
        raise ProviderError("invalid", f"{voice.name}'s voice has neither an id nor a sample.")
    with default_storage.open(voice.sample.file, "rb") as stored:
        data = stored.read()
    sample = VoiceSample(
        name=voice.name,
        data=data,
        filename=Path(voice.sample.file).name,
        content_type=voice.sample.content_type or "audio/mpeg",
    )
    started = int(timezone.now().timestamp()) - 5
    try:
        made: VoiceInfo | None = provider.add_voice(sample)
    except ProviderError as error:
        made = provider.find_voice(name=voice.name, since=started) if error.maybe_accepted else None
        if made is None:
            raise ProviderError(
                error.kind,
                f"{provider.label} could not make {voice.name}'s voice from its sample: "
                f"{error.message}",
                retry_after=error.retry_after,
                status_code=error.status_code,
                code=error.code,
            ) from error
    try:
        with transaction.atomic():
            return Registration.objects.create(
                provider_account_id=job.provider_account_id,
                subject=voice.subject,
                external_id=made.voice_id,
                external_name=made.name,
                source=voice.sample.file,
                job=job,
            )
    except IntegrityError:  # another job made the same voice meanwhile
        return Registration.objects.get(
            provider_account_id=job.provider_account_id,
            subject=voice.subject,
            status=Registration.Status.ACTIVE,
        )


# --- The audio -------------------------------------------------------------------------------


def audio_seconds(data: bytes) -> float:
    """How long the audio plays, decoded to the end; ResultUnusable if it does not play."""
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            rate = stream.rate or stream.codec_context.sample_rate
    except (av.FFmpegError, IndexError, ValueError) as error:
        raise ResultUnusable(f"The speech is not playable audio ({error}).") from None
    if not samples or not rate:
        raise ResultUnusable("The speech has no sound in it.")
    return round(samples / rate, 3)


def store_audio(job: Job, spoken: Speech) -> tuple[str, float]:
    """The speech saved as the job's audio (its storage name) and how long it plays."""
    seconds = audio_seconds(spoken.audio)
    name = default_storage.save(
        f"workspaces/{job.workspace_id}/jobs/{job.pk}/speech.mp3", ContentFile(spoken.audio)
    )
    return name, seconds


# --- A lost answer ---------------------------------------------------------------------------


def find_sent(job: Job, provider: SpeechProvider) -> SpeechItem | None:
    """The synthesis recorded as the job's sent payload, in the provider's history since it
    was sent (its words and voice), and not another job's; the oldest such."""
    sent = job.sent_payload or {}
    since = int((job.submitted_at or job.created_at).timestamp()) - 120
    items = provider.speech_history(since=since, voice_id=str(sent.get("voice_id") or ""))
    taken = set(
        Job.objects.filter(provider_account_id=job.provider_account_id, kind=JobKind.SPEECH)
        .exclude(pk=job.pk)
        .exclude(provider_job_id="")
        .values_list("provider_job_id", flat=True)
    )
    matches = [i for i in items if i.item_id not in taken and provider.is_sent_speech(i, sent)]
    return min(matches, key=lambda i: i.created_at) if matches else None


def from_history(provider: SpeechProvider, item: SpeechItem) -> Speech:
    """A synthesis in the history as if it had just been answered: its audio and its cost."""
    return Speech(
        audio=provider.history_audio(item.item_id),
        content_type=item.content_type,
        item_id=item.item_id,
        request_id=item.request_id,
        credits=item.credits,
    )
