"""URL map: every workspace page lives under /w/<slug>/ and is scoped to it."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from characters import views as characters
from studio.api.app import api
from studio.views import api as api_pages
from studio.views import (
    auth,
    cast,
    consistency,
    costs,
    cuts,
    frames,
    live,
    preview,
    production,
    providers,
    review,
    takes,
    viewer,
    workspaces,
)

workspace_patterns = [
    path("", workspaces.dashboard, name="dashboard"),
    path("members/", workspaces.members, name="members"),
    path("members/<int:member_id>/role/", workspaces.member_role, name="member_role"),
    path("members/<int:member_id>/remove/", workspaces.member_remove, name="member_remove"),
    path("costs/", costs.costs, name="costs"),
    path("costs/budgets/", costs.budget_save, name="budget_save"),
    path("costs/budgets/<int:budget_id>/delete/", costs.budget_delete, name="budget_delete"),
    # The API: tokens and their call logs, outgoing webhooks (owners; studio/views/api.py)
    path("api/", api_pages.api_settings, name="api_settings"),
    path("api/tokens/<int:token_id>/revoke/", api_pages.api_token_revoke, name="api_token_revoke"),
    path("api/tokens/<int:token_id>/calls/", api_pages.api_token_calls, name="api_token_calls"),
    path("api/webhooks/", api_pages.webhook_list, name="webhook_list"),
    path("api/webhooks/<int:endpoint_id>/", api_pages.webhook_detail, name="webhook_detail"),
    path(
        "api/webhooks/<int:endpoint_id>/enabled/",
        api_pages.webhook_enabled,
        name="webhook_enabled",
    ),
    path("api/webhooks/<int:endpoint_id>/delete/", api_pages.webhook_delete, name="webhook_delete"),
    path("api/webhooks/<int:endpoint_id>/test/", api_pages.webhook_ping, name="webhook_ping"),
    path(
        "api/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        api_pages.webhook_resend,
        name="webhook_resend",
    ),
    path("providers/", providers.provider_capabilities, name="provider_capabilities"),
    path("settings/providers/", providers.provider_accounts, name="provider_accounts"),
    path(
        "settings/providers/<int:account_id>/",
        providers.provider_account_edit,
        name="provider_account_edit",
    ),
    # Character library
    path("characters/", characters.character_list, name="character_list"),
    path("characters/new/", characters.character_create, name="character_create"),
    path("characters/<int:character_id>/", characters.character_detail, name="character_detail"),
    path("characters/<int:character_id>/edit/", characters.character_edit, name="character_edit"),
    path(
        "characters/<int:character_id>/voice/", characters.character_voice, name="character_voice"
    ),
    path(
        "characters/<int:character_id>/delete/",
        characters.character_delete,
        name="character_delete",
    ),
    path(
        "characters/<int:character_id>/references/",
        characters.asset_upload,
        name="asset_upload",
    ),
    path(
        "characters/<int:character_id>/references/<int:asset_id>/delete/",
        characters.asset_delete,
        name="asset_delete",
    ),
    path(
        "characters/<int:character_id>/references/<int:asset_id>/<str:variant>/",
        characters.asset_file,
        name="asset_file",
    ),
    path(
        "characters/<int:character_id>/shares/", characters.character_share, name="character_share"
    ),
    path(
        "characters/<int:character_id>/shares/<int:share_id>/revoke/",
        characters.character_unshare,
        name="character_unshare",
    ),
    path(
        "characters/<int:character_id>/shares/remove/",
        characters.share_remove,
        name="share_remove",
    ),
    path("characters/offers/<int:share_id>/accept/", characters.share_accept, name="share_accept"),
    path(
        "characters/offers/<int:share_id>/decline/", characters.share_decline, name="share_decline"
    ),
    path(
        "characters/offers/<int:share_id>/picture/",
        characters.share_offer_picture,
        name="share_offer_picture",
    ),
    # Series, episodes, scenes
    path("series/", production.series_list, name="series_list"),
    path("series/new/", production.series_create, name="series_create"),
    path("series/<int:series_id>/", production.series_detail, name="series_detail"),
    path("series/<int:series_id>/edit/", production.series_edit, name="series_edit"),
    path("series/<int:series_id>/cast/", cast.series_cast, name="series_cast"),
    path(
        "series/<int:series_id>/cast/<int:character_id>/",
        cast.series_pin,
        name="series_pin",
    ),
    path("series/<int:series_id>/delete/", production.series_delete, name="series_delete"),
    path("series/<int:series_id>/episodes/", production.episode_create, name="episode_create"),
    path("episodes/<int:episode_id>/", production.episode_detail, name="episode_detail"),
    path("episodes/<int:episode_id>/scenes/", production.episode_scenes, name="episode_scenes"),
    path("episodes/<int:episode_id>/edit/", production.episode_edit, name="episode_edit"),
    # Live progress: the storyboard's event stream, and the poll standing in for it
    path("episodes/<int:episode_id>/events/", live.episode_events, name="episode_events"),
    path("episodes/<int:episode_id>/statuses/", live.episode_statuses, name="episode_statuses"),
    path("episodes/<int:episode_id>/delete/", production.episode_delete, name="episode_delete"),
    path("episodes/<int:episode_id>/scenes/new/", production.scene_create, name="scene_create"),
    path("episodes/<int:episode_id>/generate/", takes.episode_generate, name="episode_generate"),
    path(
        "episodes/<int:episode_id>/batches/<int:batch_id>/",
        takes.episode_batch,
        name="episode_batch",
    ),
    path("episodes/<int:episode_id>/preflight/", takes.scene_preflight, name="scene_preflight"),
    path("episodes/<int:episode_id>/preview/", preview.episode_preview, name="episode_preview"),
    # Cuts: assembling an episode, each cut and its files (studio/views/cuts.py)
    path("episodes/<int:episode_id>/cut/", cuts.episode_cut, name="episode_cut"),
    path(
        "episodes/<int:episode_id>/cut/status/",
        cuts.episode_cut_status,
        name="episode_cut_status",
    ),
    path("episodes/<int:episode_id>/cuts/<int:cut_number>/", cuts.cut_detail, name="cut_detail"),
    path(
        "episodes/<int:episode_id>/cuts/<int:cut_number>/<str:variant>/",
        cuts.cut_file,
        name="cut_file",
    ),
    path("mentions/", production.mention_suggestions, name="mention_suggestions"),
    path("scenes/<int:scene_id>/", takes.scene_detail, name="scene_detail"),
    path("scenes/<int:scene_id>/frames/<str:position>/", frames.scene_frame, name="scene_frame"),
    path(
        "scenes/<int:scene_id>/frames/<str:position>/<str:variant>/",
        frames.scene_frame_file,
        name="scene_frame_file",
    ),
    path("scenes/<int:scene_id>/card/", production.scene_card, name="scene_card"),
    path("scenes/<int:scene_id>/status/", production.scene_status, name="scene_status"),
    path("scenes/<int:scene_id>/generate/", takes.scene_generate, name="scene_generate"),
    path("takes/<int:take_id>/", takes.take_card, name="take_card"),
    path("takes/<int:take_id>/cancel/", takes.take_cancel, name="take_cancel"),
    path("takes/<int:take_id>/select/", takes.take_select, name="take_select"),
    path("takes/<int:take_id>/retry/", takes.take_retry, name="take_retry"),
    path("takes/<int:take_id>/delete/", takes.take_delete, name="take_delete"),
    path("takes/<int:take_id>/remix/", takes.take_remix, name="take_remix"),
    path("takes/<int:take_id>/extend/", takes.take_extend, name="take_extend"),
    path("takes/<int:take_id>/character/", takes.take_character, name="take_character"),
    # The large viewer and side-by-side compare (studio/views/viewer.py); before take_media.
    path("takes/<int:take_id>/view/", viewer.take_viewer, name="take_viewer"),
    path("scenes/<int:scene_id>/compare/", viewer.take_compare, name="take_compare"),
    # Before take_media, whose <str:variant> would otherwise answer "consistency/" (a 404).
    path("takes/<int:take_id>/consistency/", consistency.take_consistency, name="take_consistency"),
    path("takes/<int:take_id>/<str:variant>/", takes.take_media, name="take_media"),
    # Review board (studio/views/review.py)
    path("review/", review.review_index, name="review_index"),
    path("review/episodes/<int:episode_id>/", review.review_episode, name="review_episode"),
    path("review/characters/<int:character_id>/", review.review_character, name="review_character"),
    # Consistency: scores and report (studio/views/consistency.py)
    path("consistency/", consistency.consistency_report, name="consistency_report"),
    path(
        "consistency/report.csv",
        consistency.consistency_report_csv,
        name="consistency_report_csv",
    ),
    path("consistency/threshold/", consistency.drift_threshold, name="drift_threshold"),
    path(
        "takes/<int:take_id>/consistency/frames/<int:n>/",
        consistency.take_consistency_frame,
        name="take_consistency_frame",
    ),
    path(
        "takes/<int:take_id>/consistency/score/",
        consistency.take_score_again,
        name="take_score_again",
    ),
    path("scenes/<int:scene_id>/edit/", production.scene_edit, name="scene_edit"),
    path("scenes/<int:scene_id>/delete/", production.scene_delete, name="scene_delete"),
    path("scenes/<int:scene_id>/duplicate/", production.scene_duplicate, name="scene_duplicate"),
    path("scenes/<int:scene_id>/move/", production.scene_move, name="scene_move"),
]

urlpatterns = [
    path("", workspaces.home, name="home"),
    path("login/", auth.ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/new/", workspaces.workspace_create, name="workspace_create"),
    path("w/<slug:slug>/", include(workspace_patterns)),
    path("", include("jobs.urls")),
    path("api/v1/", api.urls),
    path("gateway/", include("studio.gateways.urls")),
    path("admin/", admin.site.urls),
]
