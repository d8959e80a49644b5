"""Admin for workspaces and their members, and for series, episodes and scenes."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from studio.models import Episode, Membership, Scene, Series, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description="Members", ordering="_members")
    def member_count(self, workspace: Workspace) -> int:
        return workspace._members


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    autocomplete_fields = ["user", "workspace"]
    list_select_related = ["user", "workspace"]


class EpisodeInline(admin.TabularInline):
    model = Episode
    extra = 0
    fields = ["number", "title"]
    show_change_link = True


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "default_size", "default_duration", "updated_at"]
    list_filter = ["workspace", "default_size"]
    search_fields = ["title", "logline", "style_guide"]
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    raw_id_fields = ["created_by"]
    inlines = [EpisodeInline]


class SceneInline(admin.StackedInline):
    model = Scene
    extra = 0
    fields = ["position", "title", "prompt", "duration", "size", "notes"]
    ordering = ["position"]
    show_change_link = True


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "series", "number", "updated_at"]
    list_filter = ["series__workspace", "series"]
    search_fields = ["title", "series__title"]
    list_select_related = ["series"]
    autocomplete_fields = ["series"]
    inlines = [SceneInline]


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = ["__str__", "episode", "position", "duration", "size", "updated_at"]
    list_filter = ["episode__series__workspace", "episode__series", "size"]
    search_fields = ["title", "prompt", "episode__title"]
    list_select_related = ["episode__series"]
    autocomplete_fields = ["episode"]
    filter_horizontal = ["mentions"]
