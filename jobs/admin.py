"""Admin for the engine: accounts (secrets never shown), jobs, registrations, webhook events.

Jobs open to staff the way takes do (see studio/admin.py): through a workspace role.
"""

from collections import Counter

from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs import breaker
from jobs.models import (
    Budget,
    Job,
    JobState,
    LedgerEntry,
    PriceEntry,
    ProviderAccount,
    Registration,
    WebhookEvent,
)
from studio.admin import (
    cancel_and_report,
    may_generate,
    may_review,
    retry_and_report,
    scope_to_reviewable,
)
from studio.models import Take


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace",
        "kind",
        "base_url",
        "api_key_hint",
        "enabled",
        "concurrency_limit",
        "price_override",
        "health",
    ]
    list_filter = ["kind", "enabled", "workspace"]
    search_fields = ["name", "base_url", "workspace__name"]
    autocomplete_fields = ["workspace"]
    # Secrets are write-only: set them on the studio's provider page, never read them here.
    readonly_fields = ["api_key_hint", "webhook_token", "health", "created_at", "updated_at"]
    exclude = ["api_key_encrypted", "webhook_secret_encrypted"]
    actions = ["close_breakers"]
    # The base URL is checked like the studio's form (ProviderAccount.clean): public only.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Breaker")
    def health(self, account: ProviderAccount) -> str:
        state = breaker.state(account.pk)
        if state.state == "open":
            return f"open ({state.failures} failures; a trial in {state.reopens_in:.0f} s)"
        return state.state

    @admin.action(description="The provider is back: close the selected accounts' breakers")
    def close_breakers(self, request, queryset) -> None:
        for account_id in queryset.values_list("pk", flat=True):
            breaker.reset(account_id)
        self.message_user(request, f"{queryset.count()} breaker(s) closed.", messages.SUCCESS)


@admin.register(PriceEntry)
class PriceEntryAdmin(admin.ModelAdmin):
    """The price book: the estimates of new jobs follow what is saved here."""

    list_display = ["provider_kind", "model", "size", "unit", "amount", "source", "updated_at"]
    list_editable = ["amount"]
    list_filter = ["provider_kind", "unit"]
    search_fields = ["model", "source"]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["workspace", "scope", "label", "period", "cap", "updated_at"]
    list_filter = ["period", ("workspace", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["label", "scope", "workspace__name"]
    autocomplete_fields = ["workspace"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: the ledger is written by the engine alone, and never edited."""

    list_display = [
        "created_at",
        "workspace",
        "job",
        "provider_account",
        "kind",
        "amount",
        "period",
    ]
    list_filter = ["kind", "period", ("workspace", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["workspace", "provider_account"]
    search_fields = ["note", "scope"]
    raw_id_fields = ["job"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
        from jobs import dispatch
        from jobs.tasks import poll_job

        running = queryset.filter(state__in=(JobState.QUEUED, JobState.RUNNING))
        for job_id in running.values_list("pk", flat=True):
            dispatch.send(poll_job, int(job_id), True)
        self.message_user(request, f"{running.count()} job(s) will be refreshed.", messages.SUCCESS)


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = [
        "subject",
        "provider_account",
        "external_id",
        "external_name",
        "status",
        "created_at",
    ]
    list_filter = ["status", "provider_account__kind"]
    search_fields = ["subject", "external_id", "external_name"]
    list_select_related = ["provider_account"]
    raw_id_fields = ["job"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "event_type", "provider_job_id", "provider_account", "received_at"]
    list_filter = ["event_type", "provider_account"]
    search_fields = ["event_id", "provider_job_id"]
    readonly_fields = [
        "provider_account",
        "event_id",
        "event_type",
        "provider_job_id",
        "payload",
        "received_at",
    ]
