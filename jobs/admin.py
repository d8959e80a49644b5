"""Admin for the engine: accounts (secrets never shown), jobs, registrations, webhook events."""

from django.contrib import admin, messages

from jobs import services
from jobs.models import Job, JobState, ProviderAccount, Registration, WebhookEvent


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
    ]
    list_filter = ["kind", "enabled", "workspace"]
    search_fields = ["name", "base_url", "workspace__name"]
    autocomplete_fields = ["workspace"]
    # Secrets are write-only: set them on the studio's provider page, never read them here.
    readonly_fields = ["api_key_hint", "webhook_token", "created_at", "updated_at"]
    exclude = ["api_key_encrypted", "webhook_secret_encrypted"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
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
    list_filter = ["state", "kind", "provider_account__kind", "workspace"]
    search_fields = ["provider_job_id", "error_message"]
    list_select_related = ["workspace", "provider_account"]
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel_jobs", "poll_now"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs are made by the studio, which compiles and prices them

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request, queryset) -> None:
        cancelled = sum(
            services.job_cancel(job=job) for job in queryset.select_related("provider_account")
        )
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)

    @admin.action(description="Ask the provider for news now")
    def poll_now(self, request, queryset) -> None:
        from jobs.tasks import poll_job

        running = queryset.filter(state__in=(JobState.QUEUED, JobState.RUNNING))
        for job_id in running.values_list("pk", flat=True):
            poll_job.delay(job_id, force=True)
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
