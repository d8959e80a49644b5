"""The character library: characters, their reference assets, and shares."""

from __future__ import annotations

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
        """How the engine's registrations (jobs.models.Registration.subject) name it."""
        return f"character:{self.pk}"


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

    class Meta:
        ordering = ["character", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.character.name}: {self.original_name}"


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
