"""The engine's jobs in the admin, each shown with the studio's take that made it.

The engine's own admin (jobs/admin.py) knows nothing of scenes; this one adds the take
and opens jobs to staff the way takes do: through a workspace role (studio.admin.access).
"""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs import dispatch
from jobs.dispatch import Step
from jobs.models import Job, JobState
from studio.admin.access import may_generate, may_review, scope_to_reviewable
from studio.admin.actions import cancel_and_report, retry_and_report
from studio.models import Take


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Every job for a superuser; other staff see (read-only) the jobs of workspaces they review."""

    list_display = [
        "pk",
        "workspace",
        "provider_account",
        "kind",
        "state",
        "progress",
        "cost_estimate",
        "cost_actual",
        "created_at",
    ]
    list_filter = [
        "state",
        "kind",
        "provider_account__kind",
        ("workspace", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["provider_job_id", "error_message"]
    list_select_related = ["workspace", "provider_account"]
    readonly_fields = ["studio_take", *(f.name for f in Job._meta.fields)]
    actions = ["cancel_jobs", "retry_jobs", "poll_now"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs are made by the studio, which compiles and prices them

    def has_module_permission(self, request) -> bool:
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return may_review(request)

    def has_view_permission(self, request, obj: Job | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return may_review(request, obj and obj.workspace_id)

    def has_change_permission(self, request, obj: Job | None = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj: Job | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def has_generate_permission(self, request) -> bool:
        return may_generate(request)

    def get_queryset(self, request):
        return scope_to_reviewable(request, super().get_queryset(request), "workspace")

    @admin.display(description="Take")
    def studio_take(self, job: Job) -> SafeString | str:
        take = (
            Take.objects.filter(job=job).select_related("scene__episode__series__workspace").first()
        )
        if take is None:
            return "—"
        return format_html(
            '<a href="{}">Take {} of {}</a> (the scene in the studio) · <a href="{}">review it</a>',
            take.scene.get_absolute_url(),
            take.pk,
            take.scene,
            reverse("admin:studio_take_change", args=[take.pk]),
        )

    @admin.action(description="Cancel the selected jobs", permissions=["generate"])
    def cancel_jobs(self, request, queryset) -> None:
        cancel_and_report(self, request, queryset.select_related("provider_account"), "job")

    @admin.action(
        description="Retry the selected failed or cancelled jobs", permissions=["generate"]
    )
    def retry_jobs(self, request, queryset) -> None:
        takes = list(
            Take.objects.filter(job__in=queryset).select_related("job__provider_account", "scene")
        )
        refused = Counter()
        if not_takes := queryset.count() - len(takes):
            refused["only a take's job can be retried here."] = not_takes
        retry_and_report(self, request, takes, refused)

    @admin.action(description="Ask the provider for news now", permissions=["generate"])
    def poll_now(self, request, queryset) -> None:
        running = queryset.filter(state__in=(JobState.QUEUED, JobState.RUNNING))
        for job_id in running.values_list("pk", flat=True):
            dispatch.send(Step.POLL, int(job_id), True)
        self.message_user(request, f"{running.count()} job(s) will be refreshed.", messages.SUCCESS)
