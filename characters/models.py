"""The character library: characters, their reference assets, and shares."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

HANDLE_RE = r"[a-z0-9_]{2,40}"
handle_validator = RegexValidator(
    rf"^{HANDLE_RE}$",
    "A handle is 2 to 40 lowercase letters, digits or underscores (used as @handle).",
)


class Character(models.Model):
    workspace = models.ForeignKey(
        "studio.Workspace", on_delete=models.CASCADE, related_name="characters"
    )
    name = models.CharField(max_length=120)
    handle = models.CharField(max_length=40, validators=[handle_validator])
    description = models.TextField(
        blank=True, help_text="Stable traits: look, outfit, style. Travels with the character."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "handle"], name="character_handle_unique_in_workspace"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (@{self.handle})"

    def get_absolute_url(self) -> str:
        return reverse("character_detail", args=[self.workspace.slug, self.pk])

    @property
    def registration_subject(self) -> str:
        """How the engine's registrations name its first version (CharacterVersion.subject)."""
        return version_subject(self.pk, 1)


def version_subject(character_id: int, number: int) -> str:
    """How the engine names a version of a character (jobs.models.Registration.subject).

    The first version keeps the name characters had before they had versions, so the
    registrations made then still belong to it.
    """
    return f"character:{character_id}" if number == 1 else f"character:{character_id}:v{number}"


_SUBJECT_RE = re.compile(r"^character:(\d+)(?::v(\d+))?$")


def subject_version(subject: str) -> tuple[int, int] | None:
    """(character id, version number) of a subject version_subject made, else None."""
    match = _SUBJECT_RE.match(subject)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 1)


class CurrentAssets(models.Manager):
    """References of the characters' current looks (not retired)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(retired_at__isnull=True)


def _asset_path(asset: ReferenceAsset, filename: str) -> str:
    return f"workspaces/{asset.character.workspace_id}/characters/{asset.character_id}/{filename}"


class ReferenceAsset(models.Model):
    """An image or short clip that shows what a character looks like."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        CLIP = "clip", "Clip"

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    label = models.CharField(max_length=80, blank=True, help_text="For example: front, profile.")
    file = models.FileField(upload_to=_asset_path, max_length=300)
    thumbnail = models.FileField(upload_to=_asset_path, max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=50)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration_seconds = models.FloatField(null=True, blank=True)
    codec = models.CharField(max_length=30, blank=True)
    # A tiny summary of the picture (a hex colour) that emulators and cards reuse.
    dominant_color = models.CharField(max_length=7, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the reference leaves the character's current look while an older version
    # still shows it: kept for that version, no longer offered as a current reference.
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()
    current = CurrentAssets()

    class Meta:
        ordering = ["character", "created_at", "pk"]
        base_manager_name = "objects"
        default_manager_name = "objects"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.character.name}: {self.original_name}"


def _voice_path(version: CharacterVersion, filename: str) -> str:
    character = version.character
    return f"workspaces/{character.workspace_id}/characters/{character.pk}/voice/{filename}"


class CharacterVersion(models.Model):
    """A character's look at one time: its description and the references that show it.

    A version that any take or series uses never changes: editing the description or
    the references then makes the next version, and the old one stays readable (its
    reference files are kept while a version shows them). A series pins a version of each
    character it uses (studio.models.SeriesCharacter); registrations at providers belong
    to a version (its `subject`), so a new look registers anew and an old pin keeps its own.
    """

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    assets = models.ManyToManyField(ReferenceAsset, blank=True, related_name="versions")
    change = models.CharField(
        max_length=300, blank=True, help_text="What this version changed, in plain words."
    )
    # The voice this version speaks in, at a speech provider account: the provider's own voice
    # id, or a short sample it makes a voice from (studio dubs lines in it).
    voice_account = models.ForeignKey(
        "jobs.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The text-to-speech account that speaks for this character.",
    )
    voice_id = models.CharField(max_length=120, blank=True, help_text="The provider's voice id.")
    voice_name = models.CharField(max_length=120, blank=True)
    voice_sample = models.FileField(upload_to=_voice_path, max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["character", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["character", "number"], name="character_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.character.name} v{self.number}"

    @property
    def subject(self) -> str:
        """How the engine names this version (its registrations, its cast member)."""
        return version_subject(self.character_id, self.number)

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def voice_subject(self) -> str:
        """How the engine names this version's voice (a registration where it is a sample)."""
        return f"voice:{self.subject}"

    @property
    def has_voice(self) -> bool:
        return bool(self.voice_account_id and (self.voice_id or self.voice_sample))


class CharacterShare(models.Model):
    """A character offered to another workspace; once its owners accept, they may mention
    (not change) it there. Either side can end it."""

    class Status(models.TextChoices):
        OFFERED = "offered", "Offered"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REMOVED = "removed", "Removed by the receiving workspace"

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="shares")
    # What the sender typed (lowercased). Their pages show this, never a workspace name,
    # until the receiving owners answer: the offer must not tell whether the slug exists.
    offered_slug = models.SlugField(max_length=60, db_index=False)
    # Resolved once, when the offer is made. An offer to a slug no workspace has keeps
    # none and simply never gets an answer; a workspace created later under that slug
    # does not receive it.
    workspace = models.ForeignKey(
        "studio.Workspace",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="shared_characters",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OFFERED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["character", "workspace"], name="one_share_per_workspace"
            ),
            models.UniqueConstraint(
                fields=["character", "offered_slug"], name="one_share_per_offered_slug"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="accepted") | models.Q(workspace__isnull=False),
                name="accepted_share_has_workspace",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.character} offered to “{self.offered_slug}” ({self.get_status_display()})"

    @property
    def answered(self) -> bool:
        """Whether the receiving owners have said anything yet (only then may we name them)."""
        return self.status != self.Status.OFFERED
