"""Admin for the engine's rows that need nothing from the studio (secrets are never shown).

Provider accounts, the price book, budgets, the ledger, registrations and webhook events.
Jobs are listed by the studio's admin (studio/admin/jobs.py), which shows the take each
one made and opens them to staff through a workspace role, as it does takes.
"""

from django.contrib import admin, messages
from django.db import models

from jobs import breaker
from jobs.models import (
    Budget,
    LedgerEntry,
    PriceEntry,
    ProviderAccount,
    Registration,
    WebhookEvent,
)


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
