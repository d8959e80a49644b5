"""The review queue: every take with a player, awaiting review first, reviewed in bulk."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Case, IntegerField, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.models import JobState
from studio.admin.access import may_generate, may_review, scope_to_reviewable
from studio.admin.actions import cancel_and_report, retry_and_report
from studio.models import Episode, ReviewReason, Take
from studio.services import REVIEW_AXES, take_review

# What only a finished take can be given: a verdict, its reasons, the reviewer's scores.
VERDICT_FIELDS = (
    "review_state",
    "review_codes",
    "review_reason",
    "review_face",
    "review_clothing",
    "review_style",
)

# The review queue: a finished take nobody has reviewed yet comes first.
AWAITING_REVIEW = When(review_state=Take.Review.PENDING, job__state=JobState.SUCCEEDED, then=0)

# The list's preview width: small enough that Cost, Review, Selected and Created at fit
# beside the filters at 1440 px.
PREVIEW_WIDTH = 112


class EpisodeFilter(admin.RelatedOnlyFieldListFilter):
    """Episodes of the listed takes, named with their series (in one query)."""

    def field_choices(self, field, request, model_admin):
        used = model_admin.get_queryset(request).values("scene__episode")
        episodes = Episode.objects.filter(pk__in=used).select_related("series")
        return [(episode.pk, str(episode)) for episode in episodes]


class JobStateFilter(admin.SimpleListFilter):
    title = "job state"
    parameter_name = "job_state"

    def lookups(self, request, model_admin):
        return JobState.choices

    def queryset(self, request, queryset):
        return queryset.filter(job__state=self.value()) if self.value() else queryset


class ReviewStatusFilter(admin.SimpleListFilter):
    """Awaiting review means finished and not yet reviewed; an unfinished take awaits nothing."""

    title = "review status"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return Take.Review.choices

    def queryset(self, request, queryset):
        if self.value() == Take.Review.PENDING:
            return queryset.filter(review_state=Take.Review.PENDING, job__state=JobState.SUCCEEDED)
        return queryset.filter(review_state=self.value()) if self.value() else queryset


class TakeReviewForm(forms.ModelForm):
    """The review the studio's review board records: state, reason codes, a reason in words,
    notes and the reviewer's own scores."""

    review_codes = forms.MultipleChoiceField(
        label="Reasons",
        choices=ReviewReason.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Why the take is rejected; cleared when it is approved.",
    )

    class Meta:
        model = Take
        fields = [
            "review_state",
            "review_codes",
            "review_reason",
            "review_notes",
            "review_face",
            "review_clothing",
            "review_style",
        ]
        labels = {
            "review_reason": "Reason in words",
            "review_face": "Reviewer's face score",
            "review_clothing": "Reviewer's clothing score",
            "review_style": "Reviewer's style score",
        }

    def clean(self):
        cleaned = super().clean()
        # The same rule take_review enforces, checked here so it shows next to the field.
        if (
            cleaned.get("review_state") == Take.Review.REJECTED
            and not cleaned.get("review_codes")
            and not (cleaned.get("review_reason") or "").strip()
        ):
            self.add_error(
                "review_reason",
                "Say why the take is rejected (tick a reason or write one), "
                "so whoever retries it knows.",
            )
        return cleaned


class RejectTakesForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Shown with each take, so whoever retries it knows what to change.",
    )


def _unplayable(take: Take) -> SafeString | None:
    """Why the take has no video to play yet, or None when it has one."""
    job = take.job
    if not job.is_terminal:
        return format_html(
            '<span class="take-no-video">Not finished ({})</span>', job.get_state_display()
        )
    if job.state != JobState.SUCCEEDED or not job.video:
        return format_html(
            '<span class="take-no-video">No video ({})</span>', job.get_state_display()
        )
    return None


def _media(take: Take, kind: str) -> str:
    """The studio's access-checked URL of the take's video or thumbnail."""
    return reverse("take_media", args=[take.scene.episode.series.workspace.slug, take.pk, kind])


def _player(take: Take, *, width: int) -> SafeString:
    """The take's video (one take's page: it is what the reviewer came to watch)."""
    if (why := _unplayable(take)) is not None:
        return why
    poster = _media(take, "thumbnail") if take.job.thumbnail else ""
    return format_html(
        '<video controls preload="none" poster="{}" src="{}" width="{}"></video>',
        poster,
        _media(take, "video"),
        width,
    )


def _preview(take: Take) -> SafeString:
    """A row's preview: the thumbnail and a Play link, no video until asked for.

    A list of 24 videos would open 24 streams; static/js/admin_takes.js swaps the link for
    a player when it is clicked (without JavaScript the link opens the video itself).
    """
    if (why := _unplayable(take)) is not None:
        return why
    video = _media(take, "video")
    if take.job.thumbnail:
        picture = format_html(
            '<img src="{}" alt="" width="{}" loading="lazy">',
            _media(take, "thumbnail"),
            PREVIEW_WIDTH,
        )
    else:
        picture = format_html('<span class="take-no-thumbnail">No thumbnail</span>')
    return format_html(
        '<a class="take-play" href="{}" data-video="{}" data-width="{}"'
        ' aria-label="Play take {}">{}<span class="take-play-label">Play</span></a>',
        video,
        video,
        PREVIEW_WIDTH,
        take.pk,
        picture,
    )


@admin.register(Take)
class TakeAdmin(admin.ModelAdmin):
    """The reviewers' list: awaiting review first, a player per take, review in bulk."""

    # Scene, episode and series share a column, as do the job's state and account and the
    # review and its scores: twelve narrow columns did not fit at 1440 px.
    list_display = [
        "take_number",
        "preview",
        "where",
        "job_summary",
        "cost",
        "review_summary",
        "selected",
        "created",
    ]
    list_filter = [
        ("scene__episode__series", admin.RelatedOnlyFieldListFilter),
        ("scene__episode", EpisodeFilter),
        JobStateFilter,
        ("job__provider_account", admin.RelatedOnlyFieldListFilter),
        ReviewStatusFilter,
    ]
    list_select_related = ["scene__episode__series__workspace", "job__provider_account"]
    search_fields = ["scene__title", "scene__prompt", "review_reason"]
    form = TakeReviewForm
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "player",
                    "scene_link",
                    "provider",
                    "job_link",
                    "job_state",
                    "cost",
                    "prompt",
                    "created_at",
                    "selected",
                ]
            },
        ),
        (
            "Review",
            {
                "fields": [
                    "review_state",
                    "review_codes",
                    "review_reason",
                    "review_notes",
                    ("review_face", "review_clothing", "review_style"),
                    "reviewer",
                    "reviewed_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "player",
        "scene_link",
        "provider",
        "job_link",
        "job_state",
        "cost",
        "prompt",
        "created_at",
        "selected",
        "reviewer",
        "reviewed_at",
    ]
    actions = ["approve_takes", "reject_takes", "retry_takes", "cancel_takes"]

    class Media:
        css = {"all": ["css/admin_takes.css"]}
        js = ["js/admin_takes.js"]

    # Access: a workspace role, not Django's model permissions (studio.admin.access).

    def has_module_permission(self, request) -> bool:
        return may_review(request)

    def has_view_permission(self, request, obj: Take | None = None) -> bool:
        return may_review(request, obj and obj.scene.episode.series.workspace_id)

    def has_change_permission(self, request, obj: Take | None = None) -> bool:
        return may_review(request, obj and obj.scene.episode.series.workspace_id)

    def has_add_permission(self, request) -> bool:
        return False  # takes are made by generating in the studio

    def has_delete_permission(self, request, obj: Take | None = None) -> bool:
        return False  # the studio deletes takes (cancelling their jobs first)

    def has_generate_permission(self, request) -> bool:
        return may_generate(request)

    def get_queryset(self, request):
        # Not super(): it orders before the rank this ordering uses exists.
        takes = (
            Take.objects.select_related(
                "scene__episode__series__workspace", "job__provider_account"
            )
            .annotate(
                review_rank=Case(AWAITING_REVIEW, default=Value(1), output_field=IntegerField())
            )
            .order_by(*self.get_ordering(request))
        )
        return scope_to_reviewable(request, takes, "scene__episode__series__workspace")

    def get_ordering(self, request):
        return ["review_rank", "-created_at"]

    def get_readonly_fields(self, request, obj: Take | None = None):
        if obj is not None and obj.job.state != JobState.SUCCEEDED:
            return [*self.readonly_fields, *VERDICT_FIELDS]
        return self.readonly_fields

    def save_model(self, request, obj: Take, form, change: bool) -> None:
        if set(VERDICT_FIELDS) & set(form.changed_data):
            # The studio's review board saves through the same service: one record, one rule.
            take_review(
                takes=[obj],
                state=obj.review_state,
                reason=obj.review_reason,
                codes=obj.review_codes,
                scores={axis: getattr(obj, f"review_{axis}") for axis in REVIEW_AXES},
                reviewer=request.user,
            )
        obj.save(update_fields=["review_notes"])

    # Columns and read-only fields

    @admin.display(description="Take", ordering="pk")
    def take_number(self, take: Take) -> str:
        return f"Take {take.pk}"

    @admin.display(description="Preview")
    def preview(self, take: Take) -> SafeString:
        return _preview(take)

    @admin.display(description="Video")
    def player(self, take: Take) -> SafeString:
        return _player(take, width=640)

    @admin.display(description="Scene", ordering="scene__position")
    def scene_link(self, take: Take) -> SafeString:
        return format_html('<a href="{}">{}</a>', take.scene.get_absolute_url(), take.scene)

    @admin.display(description="Episode", ordering="scene__episode__number")
    def episode(self, take: Take) -> str:
        episode = take.scene.episode
        return f"#{episode.number}: {episode.title}"

    @admin.display(description="Series", ordering="scene__episode__series__title")
    def series(self, take: Take) -> str:
        return take.scene.episode.series.title

    @admin.display(description="Provider account", ordering="job__provider_account__name")
    def provider(self, take: Take) -> str:
        return take.job.provider_account.name

    @admin.display(description="Scene", ordering="scene__position")
    def where(self, take: Take) -> SafeString:
        episode = take.scene.episode
        return format_html(
            '<a href="{}">{}</a><span class="take-context">{} #{}: {}</span>',
            take.scene.get_absolute_url(),
            take.scene,
            episode.series.title,
            episode.number,
            episode.title,
        )

    @admin.display(description="Job", ordering="job__state")
    def job_summary(self, take: Take) -> SafeString:
        return format_html(
            '{}<span class="take-context">{}</span>',
            take.job.get_state_display(),
            take.job.provider_account.name,
        )

    @admin.display(description="Review", ordering="review_rank")
    def review_summary(self, take: Take) -> SafeString:
        scores = self.reviewer_scores(take)
        if scores == "—":
            return format_html("{}", self.review_status(take))
        return format_html(
            '{}<span class="take-context">{}</span>', self.review_status(take), scores
        )

    @admin.display(description="Created at", ordering="created_at")
    def created(self, take: Take) -> SafeString:
        local = timezone.localtime(take.created_at)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            local.isoformat(),
            date_format(local, "DATETIME_FORMAT"),
            date_format(local, "j M H:i"),
        )

    @admin.display(description="Job")
    def job_link(self, take: Take) -> SafeString:
        url = reverse("admin:jobs_job_change", args=[take.job_id])
        return format_html('<a href="{}">Job {}</a>', url, take.job_id)

    @admin.display(description="Job state", ordering="job__state")
    def job_state(self, take: Take) -> str:
        return take.job.get_state_display()

    @admin.display(description="Cost", ordering="job__cost_actual")
    def cost(self, take: Take) -> str:
        job = take.job
        if job.cost_actual is not None:
            return f"${job.cost_actual:.2f}"
        return f"≈ ${job.cost_estimate:.2f}"

    @admin.display(description="Prompt")
    def prompt(self, take: Take) -> str:
        return take.job.prompt

    @admin.display(description="Review", ordering="review_rank")
    def review_status(self, take: Take) -> str:
        if take.job.state != JobState.SUCCEEDED and take.review_state == Take.Review.PENDING:
            return "—"
        if take.review_state == Take.Review.REJECTED:
            why = [", ".join(take.review_reason_labels), take.review_reason]
            return f"Rejected: {'; '.join(part for part in why if part)}"
        return take.get_review_state_display()

    @admin.display(description="Reviewer's scores")
    def reviewer_scores(self, take: Take) -> str:
        scores = [
            f"{axis} {value}"
            for axis in REVIEW_AXES
            if (value := getattr(take, f"review_{axis}")) is not None
        ]
        return " · ".join(scores) or "—"

    @admin.display(description="Selected", boolean=True, ordering="is_selected")
    def selected(self, take: Take) -> bool:
        return take.is_selected

    @admin.display(description="Reviewed by")
    def reviewer(self, take: Take) -> str:
        return str(take.reviewed_by or "—")

    # Actions

    def _report_review(self, request, verb: str, reviewed: int, chosen: int) -> None:
        skipped = chosen - reviewed
        message = f"{reviewed} take(s) {verb}."
        if skipped:
            message += f" {skipped} skipped: not finished, so there is nothing to review yet."
        self.message_user(request, message, messages.SUCCESS if reviewed else messages.WARNING)

    @admin.action(description="Approve the selected takes", permissions=["change"])
    def approve_takes(self, request, queryset) -> None:
        takes = list(queryset)
        reviewed = take_review(takes=takes, state=Take.Review.APPROVED, reviewer=request.user)
        self._report_review(request, "approved", reviewed, len(takes))

    @admin.action(
        description="Reject the selected takes (asks for a reason)", permissions=["change"]
    )
    def reject_takes(self, request, queryset) -> TemplateResponse | None:
        takes = list(queryset)
        # The list's action form has no "post"; the reason page sends it with the reason.
        form = RejectTakesForm(request.POST if "post" in request.POST else None)
        if form.is_valid():
            reviewed = take_review(
                takes=takes,
                state=Take.Review.REJECTED,
                reason=form.cleaned_data["reason"],
                reviewer=request.user,
            )
            self._report_review(request, "rejected", reviewed, len(takes))
            return None
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject takes",
            "subtitle": None,
            "opts": self.opts,
            "takes": takes,
            "finished": JobState.SUCCEEDED,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/studio/take/reject_takes.html", context)

    @admin.action(
        description="Retry the selected failed or cancelled takes", permissions=["generate"]
    )
    def retry_takes(self, request, queryset) -> None:
        retry_and_report(self, request, queryset)

    @admin.action(description="Cancel the selected unfinished takes", permissions=["generate"])
    def cancel_takes(self, request, queryset) -> None:
        cancel_and_report(self, request, [take.job for take in queryset], "take")
