"""A character's voice: the speech provider account that speaks for it, and in which voice
(one of the provider's own, or one it makes from a short sample we keep).

The voice belongs to the character's current version and setting it makes no new version:
a look is what versions track, and older versions keep the voice they had. The studio dubs
dialogue in it (studio.speech).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from characters.models import Character, CharacterVersion
from characters.services import character_version_latest
from characters.voice_checks import SampleRejected, inspect_sample
from jobs import engine
from jobs.models import ProviderAccount
from jobs.providers.errors import ProviderError
from studio.models import Workspace

SPEECH = "speech"


def speech_accounts(*, workspace: Workspace) -> list[ProviderAccount]:
    """The workspace's switched-on accounts that speak (their adapter makes speech)."""
    accounts = ProviderAccount.objects.filter(workspace=workspace, enabled=True).order_by(
        "name", "pk"
    )
    return [account for account in accounts if is_speech_account(account)]


def is_speech_account(account: ProviderAccount) -> bool:
    try:
        return account.capabilities.output == SPEECH
    except KeyError:  # a kind this build has no adapter for
        return False


@dataclass(frozen=True)
class VoiceList:
    """An account's voices, or why they could not be listed (in plain words)."""

    account: ProviderAccount
    voices: list = field(default_factory=list)  # jobs.providers.speech.VoiceInfo
    problem: str = ""

    def named(self, voice_id: str) -> object | None:
        return next((v for v in self.voices if v.voice_id == voice_id), None)


def voice_list(account: ProviderAccount) -> VoiceList:
    """The account's voices (free: nothing is made). A provider that refuses or does not
    answer gives a plain problem instead, never an error page."""
    if not is_speech_account(account):
        return VoiceList(account, problem=_not_speech(account))
    try:
        voices = engine.voices(account)
    except ProviderError as error:
        return VoiceList(account, problem=_listing_problem(account, error))
    return VoiceList(account, sorted(voices, key=lambda v: (v.category != "premade", v.name)))


def _listing_problem(account: ProviderAccount, error: ProviderError) -> str:
    if error.kind == "auth":
        return (
            f"{account.name} refused the API key; an owner can check it in the provider settings."
        )
    return f"{account.name} could not list its voices just now ({error.message}). Try again."


def _speech_account(character: Character, account: ProviderAccount) -> None:
    if account.workspace_id != character.workspace_id or not account.enabled:
        raise ValidationError({"account": "That account is not available in this workspace."})
    if not is_speech_account(account):
        raise ValidationError({"account": _not_speech(account)})


def _not_speech(account: ProviderAccount) -> str:
    return f"{account.name} makes video, not speech: choose a text-to-speech account."


def character_voice_choose(
    *, character: Character, account: ProviderAccount, voice_id: str
) -> CharacterVersion:
    """Make one of the account's voices the character's (its current version's).

    The voice must be one the account lists now (its name is kept from the list); a
    provider that cannot list its voices leaves the voice as it was, with a plain reason.
    """
    _speech_account(character, account)
    voice_id = voice_id.strip()
    if not voice_id:
        raise ValidationError({"voice_id": "Pick a voice, or type its id."})
    listed = voice_list(account)
    if listed.problem:
        raise ValidationError({"voice_id": listed.problem})
    voice = listed.named(voice_id)
    if voice is None:
        raise ValidationError(
            {"voice_id": f"{account.name} has no voice “{voice_id}”: pick one from its list."}
        )
    return _set(character, account=account, voice_id=voice.voice_id, voice_name=voice.name)


def character_voice_sample(
    *, character: Character, account: ProviderAccount, upload: UploadedFile
) -> CharacterVersion:
    """Keep a short recording the account makes the character's voice from (on the first
    line it speaks). Checked by content: audio that decodes, 10 MB and 1 to 60 s at most."""
    _speech_account(character, account)
    if not account.capabilities.voice_samples:
        raise ValidationError(
            {"sample": f"{account.name} makes no voice from a sample: pick one of its voices."}
        )
    name = PurePath(upload.name or "sample").name
    try:
        sample = inspect_sample(upload, name=name)
    except SampleRejected as rejected:
        raise ValidationError({"sample": rejected.message}) from None
    version = character_version_latest(character)
    # A new name each time: a job waiting to speak in the old sample still finds its file.
    version.voice_sample.save(f"{uuid.uuid4().hex}.{sample.extension}", upload, save=False)
    return _set(
        character,
        account=account,
        voice_id="",
        voice_name=character.name,
        sample=version.voice_sample.name,
    )


def character_voice_known(
    *, character: Character, account: ProviderAccount, voice_id: str, voice_name: str
) -> CharacterVersion:
    """Make a voice the caller knows the account has (the demo's premade voices) the
    character's, without asking the provider for its list."""
    _speech_account(character, account)
    return _set(character, account=account, voice_id=voice_id, voice_name=voice_name)


def character_voice_clear(*, character: Character) -> CharacterVersion:
    """The character's current version speaks in no voice (its lines are not dubbed)."""
    return _set(character, account=None, voice_id="", voice_name="")


def _set(
    character: Character,
    *,
    account: ProviderAccount | None,
    voice_id: str,
    voice_name: str,
    sample: str = "",
) -> CharacterVersion:
    with transaction.atomic():
        # The version a concurrent revision may be making next: set on the newest.
        Character.objects.select_for_update().filter(pk=character.pk).first()
        version = character_version_latest(character)
        version.voice_account = account
        version.voice_id = voice_id
        version.voice_name = voice_name
        version.voice_sample = sample
        version.save(update_fields=["voice_account", "voice_id", "voice_name", "voice_sample"])
    return version
