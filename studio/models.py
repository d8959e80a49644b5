"""Tenancy (workspaces, memberships) and the production domain (series to scenes)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse


def series_scope(series_id: int) -> str:
    """The budget scope of a series' takes (jobs.models.Budget.scope, Job.budget_scope)."""
    return f"series:{series_id}"


class RoutingPolicy(models.TextChoices):
    COST = "cost", "Cheapest capable provider"
    STABILITY = "stability", "Most reliable provider (recent success rate and speed)"
    CHARACTERS = "characters", "Native characters where the scene mentions any; else cheapest"
    PINNED = "pinned", "Always one provider account"


SIZE_CHOICES = [
    ("1280x720", "1280×720 (landscape)"),
    ("720x1280", "720×1280 (portrait)"),
    ("1792x1024", "1792×1024 (wide, high)"),
    ("1024x1792", "1024×1792 (tall, high)"),
    ("1024x1024", "1024×1024 (square)"),
]
DURATION_VALIDATORS = [MinValueValidator(1), MaxValueValidator(60)]
slug_validator = RegexValidator(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    "Use lowercase letters, digits and single hyphens.",
)


class Workspace(models.Model):
    """A team: everything a user sees belongs to one of their workspaces."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True, validators=[slug_validator])
    drift_threshold = models.PositiveSmallIntegerField(
        default=60,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="A take whose automatic face, clothing or style score falls below this "
        "(0-100) is flagged for review.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dashboard", args=[self.slug])


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A user's role in a workspace; the role decides what they may change."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class StoryboardView(models.TextChoices):
        LIST = "list", "List"
        GRID = "grid", "Grid"
        TIMELINE = "timeline", "Timeline"

    # How this member last chose to see an episode's storyboard (the page opens that way).
    storyboard_view = models.CharField(
        max_length=10, choices=StoryboardView.choices, default=StoryboardView.LIST
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user"),
        ]
        ordering = ["workspace", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def remember_storyboard_view(self, view: str) -> None:
        """Keep `view` as the way this member's storyboards open (a write only on a change;
        an unknown name changes nothing)."""
        if view in self.StoryboardView.values and view != self.storyboard_view:
            self.storyboard_view = view
            self.save(update_fields=["storyboard_view"])

    @property
    def can_manage(self) -> bool:
        """Members, provider keys, budgets: owners only."""
        return self.role == Role.OWNER

    @property
    def can_edit(self) -> bool:
        """Characters, series, scenes and generation."""
        return self.role in (Role.OWNER, Role.EDITOR)

    @property
    def can_review(self) -> bool:
        """Approve or reject takes."""
        return self.role in (Role.OWNER, Role.EDITOR, Role.REVIEWER)


class Series(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="series")
    title = models.CharField(max_length=200)
    logline = models.CharField(max_length=500, blank=True)
    style_guide = models.TextField(
        blank=True, help_text="Appended to every scene's prompt: look, palette, camera, mood."
    )
    default_size = models.CharField(max_length=12, choices=SIZE_CHOICES, default="1280x720")
    default_duration = models.PositiveSmallIntegerField(
        default=8, validators=DURATION_VALIDATORS, help_text="Seconds."
    )
    routing_policy = models.CharField(
        max_length=12, choices=RoutingPolicy.choices, default=RoutingPolicy.COST
    )
    pinned_account = models.ForeignKey(
        "jobs.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The provider account the pinned policy uses.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("series_detail", args=[self.workspace.slug, self.pk])


class SeriesCharacter(models.Model):
    """The version of a character a series is made with: pinned to the latest when the
    series first makes a take of it; owners and editors may move it."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="cast_pins")
    character = models.ForeignKey(
        "characters.Character", on_delete=models.CASCADE, related_name="series_pins"
    )
    version = models.ForeignKey(
        "characters.CharacterVersion", on_delete=models.CASCADE, related_name="series_pins"
    )
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pinned_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["series", "character__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "character"], name="one_pin_per_series_character"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.series}: {self.version}"


class Episode(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="episodes")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    # The series' Inbox: where takes made through the API gateways land, one scene each.
    inbox = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["series", "number"]
        constraints = [
            models.UniqueConstraint(fields=["series", "number"], name="episode_number_unique"),
            models.UniqueConstraint(
                fields=["series"], condition=models.Q(inbox=True), name="one_inbox_per_series"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.series.title} #{self.number}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("episode_detail", args=[self.series.workspace.slug, self.pk])

    @property
    def workspace(self) -> Workspace:
        return self.series.workspace


class Scene(models.Model):
    """One shot of an episode; its prompt names characters as @handle."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="scenes")
    # Kept dense (0..n-1) by studio.services.scene_move / scene_create / scene_delete.
    position = models.PositiveIntegerField(db_index=True)
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(max_length=32000)
    duration = models.PositiveSmallIntegerField(
        validators=DURATION_VALIDATORS, help_text="Seconds."
    )
    size = models.CharField(max_length=12, choices=SIZE_CHOICES)
    notes = models.TextField(blank=True)
    routing_policy = models.CharField(
        max_length=12,
        choices=RoutingPolicy.choices,
        blank=True,
        help_text="Blank: the series' policy.",
    )
    pinned_account = models.ForeignKey(
        "jobs.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The provider account the pinned policy uses.",
    )
    mentions = models.ManyToManyField(
        "characters.Character",
        related_name="scenes",
        blank=True,
        help_text="The characters the prompt names; kept in step by the scene services.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["episode", "position"]

    def __str__(self) -> str:
        return self.title or f"Scene {self.position + 1}"

    def get_absolute_url(self) -> str:
        return reverse("scene_detail", args=[self.episode.series.workspace.slug, self.pk])

    @property
    def number(self) -> int:
        return self.position + 1


def _frame_path(frame: SceneFrame, filename: str) -> str:
    workspace = frame.scene.episode.series.workspace_id
    return f"workspaces/{workspace}/scenes/{frame.scene_id}/frames/{filename}"


class SceneFrame(models.Model):
    """A picture a scene's video starts from or ends on, at providers that take one."""

    class Position(models.TextChoices):
        FIRST = "first", "Starts from"
        LAST = "last", "Ends on"

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="frames")
    position = models.CharField(max_length=5, choices=Position.choices)
    file = models.FileField(upload_to=_frame_path, max_length=300)
    thumbnail = models.FileField(upload_to=_frame_path, max_length=300)
    content_type = models.CharField(max_length=60)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scene", "position"]
        constraints = [
            models.UniqueConstraint(fields=["scene", "position"], name="one_frame_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.get_position_display()} picture of {self.scene}"


class ReviewReason(models.TextChoices):
    """Why a reviewer turned a take down (a take may have several)."""

    FACE = "face", "Face"
    CLOTHING = "clothing", "Clothing"
    STYLE = "style", "Style"
    CONTINUITY = "continuity", "Scene continuity"
    MOTION = "motion", "Motion artefact"
    WRONG_CHARACTER = "wrong_character", "Wrong character"
    MODERATION = "moderation", "Moderation"
    OTHER = "other", "Other"


SCORE_VALIDATORS = [MinValueValidator(0), MaxValueValidator(100)]


class Take(models.Model):
    """One attempt at a scene: a link from the scene to the job that makes its video."""

    class Review(models.TextChoices):
        PENDING = "pending", "Awaiting review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="takes")
    # RESTRICT: a job never vanishes on its own, only with its whole workspace.
    job = models.OneToOneField("jobs.Job", on_delete=models.RESTRICT, related_name="take")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The take this one remixes or extends.",
    )
    review_state = models.CharField(max_length=10, choices=Review.choices, default=Review.PENDING)
    review_reason = models.CharField(max_length=300, blank=True)
    review_notes = models.TextField(blank=True)
    # ReviewReason values, in the order the reviewer gave them.
    review_codes = models.JSONField(default=list, blank=True)
    # The reviewer's own scores, 0-100, on the axes the automatic scorer measures.
    review_face = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=SCORE_VALIDATORS
    )
    review_clothing = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=SCORE_VALIDATORS
    )
    review_style = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=SCORE_VALIDATORS
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    is_selected = models.BooleanField(default=False)
    # The version of each mentioned character the take was made with (its series' pins).
    character_versions = models.ManyToManyField(
        "characters.CharacterVersion", blank=True, related_name="takes"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The generate-all that made it: a batch's task skips the scenes it made already.
    batch = models.ForeignKey(
        "GenerationBatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="takes",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["review_state", "-created_at"], name="take_review_queue")]
        constraints = [
            models.UniqueConstraint(
                fields=["scene"], condition=models.Q(is_selected=True), name="one_selected_take"
            ),
        ]

    def __str__(self) -> str:
        return f"Take {self.pk} of {self.scene}"

    @property
    def review_reason_labels(self) -> list[str]:
        labels = dict(ReviewReason.choices)
        return [labels.get(code, code) for code in self.review_codes]


class GenerationBatch(models.Model):
    """A generate-all: the scenes it makes takes for, priced and held against the budgets
    at once when it was asked for, then made one by one by a task (studio.batches)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Creating takes"
        DONE = "done", "Done"
        FAILED = "failed", "Stopped by an error"

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account every take goes to; None: each scene's routing policy picks.
    account = models.ForeignKey(
        "jobs.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    automatic = models.BooleanField(default=False)
    scene_ids = models.JSONField(default=list)  # in storyboard order
    total_estimate = models.DecimalField(max_digits=12, decimal_places=4)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    made = models.PositiveIntegerField(default=0)
    # {scene id: "Scene 4: why, in plain words"}: one entry per scene, however often it runs.
    refusals = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The task delivery running it, and when it last made progress (a lease for redelivery).
    claimed_by = models.CharField(max_length=64, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["episode", "-created_at"], name="batch_episode_recent")]

    def __str__(self) -> str:
        return f"Generate-all {self.pk} of {self.episode}"

    @property
    def hold_key(self) -> str:
        """The ledger hold that reserves the batch's total (jobs.ledger.hold_take)."""
        return f"batch:{self.pk}"

    @property
    def total(self) -> int:
        return len(self.scene_ids)

    @property
    def refused(self) -> int:
        return len(self.refusals)

    @property
    def handled(self) -> int:
        return self.made + self.refused

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class TakeScore(models.Model):
    """The automatic drift score of a take: how far its characters moved from their pinned
    versions' references, per axis (0-100, the worst character's), and whether that
    flags it for review. One per take; scored again, it is replaced."""

    class State(models.TextChoices):
        PENDING = "pending", "Scoring"
        SCORED = "scored", "Scored"
        SKIPPED = "skipped", "Nothing to score"
        FAILED = "failed", "Could not score"

    take = models.OneToOneField(Take, on_delete=models.CASCADE, related_name="score")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    scorer = models.CharField(max_length=120, blank=True)
    face = models.FloatField(null=True, blank=True)
    clothing = models.FloatField(null=True, blank=True)
    style = models.FloatField(null=True, blank=True)
    persistence = models.FloatField(null=True, blank=True)
    threshold = models.PositiveSmallIntegerField(null=True, blank=True)
    flagged = models.BooleanField(default=False)
    # Why it is flagged: [{"axis": "face", "score": 41.0, "character": "Mina"}, ...]
    flag_reasons = models.JSONField(default=list, blank=True)
    frames_sampled = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField(null=True, blank=True)
    cpu_seconds = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["flagged", "state"], name="take_score_flagged")]

    def __str__(self) -> str:
        return f"Score of take {self.take_id} ({self.get_state_display()})"

    @property
    def flag_summary(self) -> str:
        """The flag in plain words: "Face 41, clothing 38 below 60"."""
        if not self.flagged:
            return ""
        parts = [
            f"{reason['axis']} {round(reason['score'])}"
            + (f" ({reason['character']})" if reason.get("character") else "")
            for reason in self.flag_reasons
        ]
        text = ", ".join(parts)
        return f"{text[:1].upper()}{text[1:]}: below {self.threshold}"


class CharacterScore(models.Model):
    """One character in a scored take: its axes, persistence, the score over frames and the
    frames that scored worst, and how the character travelled to the provider."""

    class Method(models.TextChoices):
        NATIVE = "native", "Native character"
        IMAGES = "images", "Reference images"
        CLIP = "clip", "Reference clip"
        NONE = "none", "Prompt only"

    take_score = models.ForeignKey(TakeScore, on_delete=models.CASCADE, related_name="characters")
    character = models.ForeignKey(
        "characters.Character", on_delete=models.CASCADE, related_name="scores"
    )
    version = models.ForeignKey(
        "characters.CharacterVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="scores",
    )
    method = models.CharField(max_length=6, choices=Method.choices)
    face = models.FloatField(null=True, blank=True)
    clothing = models.FloatField(null=True, blank=True)
    style = models.FloatField(null=True, blank=True)
    persistence = models.FloatField()
    # [[seconds, face, clothing, style, recognised], ...]: the chart over frames.
    frames = models.JSONField(default=list, blank=True)
    # [{"axis", "seconds", "score", "image": storage name}, ...], worst first.
    worst = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["take_score", "character__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["take_score", "character"], name="one_score_per_take_character"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.character} in take {self.take_score.take_id}"


class DialogueLine(models.Model):
    """A line a scene's characters say, in order: its words, who says it (a character of the
    scene, or nobody: a voice off screen) and, optionally, when (seconds into the scene).

    Providers that speak as they film read the lines in the prompt; for the others the
    lines are dubbed in the character's voice (LineReading). Either way they are the cut's
    subtitles.
    """

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    character = models.ForeignKey(
        "characters.Character",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lines",
        help_text="Blank: a voice off screen (narration).",
    )
    text = models.CharField(max_length=1000)
    start = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Seconds into the scene; blank: after the line before.",
    )

    class Meta:
        ordering = ["scene", "position"]
        constraints = [
            models.UniqueConstraint(fields=["scene", "position"], name="one_line_per_position")
        ]

    def __str__(self) -> str:
        who = f"@{self.character.handle}" if self.character_id else "(off screen)"
        return f"{who}: {self.text}"


class LineReading(models.Model):
    """A line spoken in a voice: the speech job that made (or makes) its audio.

    One reading serves every cut while the line's words and the voice stay the same, so a
    line is never paid for twice; changing either makes the next cut ask for a new one.
    """

    line = models.ForeignKey(DialogueLine, on_delete=models.CASCADE, related_name="readings")
    job = models.OneToOneField("jobs.Job", on_delete=models.RESTRICT, related_name="reading")
    text = models.CharField(max_length=1000)
    # What the voice was when it was read (the voice's subject and id): a new voice reads anew.
    voice_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["line", "voice_key"], name="reading_line_voice")]

    def __str__(self) -> str:
        return f"Reading of {self.line} (job {self.job_id})"


def _cut_path(cut: Cut, filename: str) -> str:
    series = cut.episode.series
    return (
        f"workspaces/{series.workspace_id}/episodes/{cut.episode_id}/cuts/{cut.number}/{filename}"
    )


class Cut(models.Model):
    """One assembly of an episode: its selected takes in order, made into one MP4 with its
    subtitles, chapters, contact sheet and timelines for an editor. Every cut is kept; the
    newest is the episode's current cut. `manifest` records what went in (takes, lines,
    timings), so a take that changes afterwards marks the cut stale."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        DUBBING = "dubbing", "Making speech"
        RENDERING = "rendering", "Assembling"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="cuts")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    # How to assemble: {"crossfade": seconds, "title_card": bool, "end_card": bool,
    # "burn_subtitles": bool, "size": "1280x720", "fps": 24}.
    options = models.JSONField(default=dict, blank=True)
    # What went in: scenes in order with their take, job, start and length, lines and cues.
    manifest = models.JSONField(default=dict, blank=True)
    duration = models.FloatField(null=True, blank=True)
    video = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    subtitles_vtt = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    subtitles_srt = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    chapters_vtt = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    contact_sheet = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    timeline_otio = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    timeline_fcpxml = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    timeline_edl = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    package = models.FileField(upload_to=_cut_path, max_length=300, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["episode", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["episode", "number"], name="one_cut_per_number")
        ]

    def __str__(self) -> str:
        return f"Cut {self.number} of {self.episode}"

    def get_absolute_url(self) -> str:
        return reverse(
            "cut_detail", args=[self.episode.series.workspace.slug, self.episode_id, self.number]
        )

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


# --- The public API: tokens, their calls, idempotent answers, outgoing webhooks -------------


class ApiToken(models.Model):
    """A workspace's key for scripts: a role like a member's, optionally bound to a series
    (where the gateways put what they make). Only a digest is stored; the token is shown
    once. It acts for the owner who made it and never beyond that person's current role."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    series = models.ForeignKey(
        Series,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_tokens",
        help_text="Where the gateways put the takes they make (its Inbox episode).",
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["workspace", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) in {self.workspace}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    # The same questions a Membership answers, so the access helpers take either.
    @property
    def can_manage(self) -> bool:
        return self.role == Role.OWNER

    @property
    def can_edit(self) -> bool:
        return self.role in (Role.OWNER, Role.EDITOR)

    @property
    def can_review(self) -> bool:
        return self.role in (Role.OWNER, Role.EDITOR, Role.REVIEWER)

    @property
    def user(self):
        """Who the token acts for (takes it makes are theirs)."""
        return self.created_by


class ApiCall(models.Model):
    """One request made with a token: the studio shows each token's recent calls."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="calls")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True)
    replayed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["token", "-at"], name="api_call_token_at")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


class IdempotentAnswer(models.Model):
    """The first answer to a POST sent with an Idempotency-Key: a repeat gets it again and
    does nothing (never pays twice)."""

    class State(models.TextChoices):
        RUNNING = "running", "Being answered"
        DONE = "done", "Answered"

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="answers")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(blank=True, default=b"")
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="one_answer_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.method} {self.path} ({self.state})"


WEBHOOK_EVENTS = (
    ("take.succeeded", "A take's video is ready"),
    ("take.failed", "A take failed"),
    ("take.cancelled", "A take was cancelled"),
    ("take.reviewed", "A take was approved or rejected"),
    ("take.selected", "A take was chosen for its scene"),
    ("cut.ready", "An episode's cut is assembled"),
    ("cut.failed", "An episode's cut failed"),
)


class WebhookEndpoint(models.Model):
    """Where a workspace wants its take and cut events sent, signed per Standard Webhooks."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Empty: every event.")
    secret_encrypted = models.TextField(editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workspace", "pk"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.events or event_type in self.events)


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: every attempt's outcome is kept for the log."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=40, db_index=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_response = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "message_id"], name="one_delivery_per_message"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint} ({self.state})"
