"""Admin for the character library."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from characters.models import Character, CharacterShare, ReferenceAsset


class ReferenceAssetInline(admin.TabularInline):
    model = ReferenceAsset
    extra = 0
    fields = ["kind", "label", "original_name", "width", "height", "duration_seconds", "codec"]
    readonly_fields = ["kind", "original_name", "width", "height", "duration_seconds", "codec"]
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # references are checked by content: add them in the studio


class CharacterShareInline(admin.TabularInline):
    model = CharacterShare
    extra = 0
    fields = ["offered_slug", "workspace", "status", "created_by", "answered_by", "answered_at"]
    autocomplete_fields = ["workspace"]
    readonly_fields = ["created_by", "answered_by", "answered_at"]


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    list_display = ["name", "handle", "workspace", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "handle", "description"]
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    raw_id_fields = ["created_by"]
    inlines = [ReferenceAssetInline, CharacterShareInline]


@admin.register(ReferenceAsset)
class ReferenceAssetAdmin(admin.ModelAdmin):
    list_display = ["preview", "character", "kind", "label", "width", "height", "size_bytes"]
    list_filter = ["kind", "character__workspace"]
    search_fields = ["character__name", "character__handle", "label", "original_name"]
    list_select_related = ["character__workspace"]
    readonly_fields = [
        "character",
        "kind",
        "file",
        "thumbnail",
        "original_name",
        "content_type",
        "size_bytes",
        "width",
        "height",
        "duration_seconds",
        "codec",
        "dominant_color",
        "created_by",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # uploads go through the studio, where content is checked

    @admin.display(description="Preview")
    def preview(self, asset: ReferenceAsset) -> str:
        character = asset.character
        url = reverse(
            "asset_file", args=[character.workspace.slug, character.pk, asset.pk, "thumbnail"]
        )
        return format_html('<img src="{}" alt="" height="48">', url)


@admin.register(CharacterShare)
class CharacterShareAdmin(admin.ModelAdmin):
    list_display = [
        "character",
        "offered_slug",
        "workspace",
        "status",
        "created_by",
        "created_at",
        "answered_at",
    ]
    # An offer to a slug no workspace has shows an empty workspace: it never gets an answer.
    list_filter = ["status", "workspace"]
    search_fields = ["character__name", "character__handle", "offered_slug", "workspace__name"]
    list_select_related = ["character", "workspace", "created_by"]
    autocomplete_fields = ["character", "workspace"]
    readonly_fields = ["created_by", "created_at", "answered_by", "answered_at"]
