"""The review list in the admin: order, players, scoping by workspace role, filters, bulk review,
and retry or cancel from the same list."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import JobState
from studio.models import Take
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes
from tests.support.pages import logged_in

pytestmark = pytest.mark.django_db

TAKES = reverse("admin:studio_take_changelist")


@pytest.fixture
def staff(members):
    """Every member (and the outsider) may open the admin; none of them is a superuser."""
    for user in members.values():
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return members


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    return SceneFactory(episode=EpisodeFactory(series=series, number=1, title="Fog"), title="Gulls")


@pytest.fixture
def account(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI main")


def _listed(html: str) -> list[int]:
    """The take numbers of the list's rows, top to bottom."""
    return [int(n) for n in re.findall(r'class="field-take_number"><a [^>]*>Take (\d+)</a>', html)]


def _act(client: Client, action: str, takes, **extra):
    data = {"action": action, "index": 0, "_selected_action": [t.pk for t in takes], **extra}
    return client.post(TAKES, data, follow=True)


# --- The list -----------------------------------------------------------------


def test_takes_awaiting_review_come_first_then_the_newest(client, staff, scene, account):
    now = timezone.now()
    old_awaiting = TakeFactory(scene=scene, account=account)
    approved = TakeFactory(scene=scene, account=account)
    approved.review_state = Take.Review.APPROVED
    approved.save()
    running = TakeFactory(scene=scene, account=account, state=JobState.RUNNING)
    new_awaiting = TakeFactory(scene=scene, account=account)
    for age, take in enumerate([new_awaiting, running, approved, old_awaiting]):
        Take.objects.filter(pk=take.pk).update(created_at=now - timedelta(minutes=age))

    html = logged_in(client, staff["reviewer"]).get(TAKES).content.decode()

    assert _listed(html) == [new_awaiting.pk, old_awaiting.pk, running.pk, approved.pk]


def test_a_row_shows_the_player_scene_episode_series_provider_state_cost_and_review(
    client, staff, workspace, scene, account
):
    finished = TakeFactory(scene=scene, account=account, job__cost_estimate=Decimal("0.80"))
    finished.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=1.0)))
    finished.job.thumbnail.save("thumbnail.jpg", ContentFile(b"jpeg"))
    billed = TakeFactory(scene=scene, account=account, job__cost_actual=Decimal("1.2"))
    TakeFactory(scene=scene, account=account, state=JobState.RUNNING)

    reviewer = logged_in(client, staff["reviewer"])
    html = reviewer.get(TAKES).content.decode()

    video = reverse("take_media", args=[workspace.slug, finished.pk, "video"])
    poster = reverse("take_media", args=[workspace.slug, finished.pk, "thumbnail"])
    # The thumbnail and a link that plays the video on demand (static/js/admin_takes.js).
    assert f'<a class="take-play" href="{video}" data-video="{video}"' in html
    assert f'<img src="{poster}"' in html
    assert "Not finished (Generating)" in html
    assert f'<a href="{scene.get_absolute_url()}">Gulls</a>' in html
    assert "Harbour Lights #1: Fog" in html
    assert "OpenAI main" in html
    assert "≈ $0.80" in html
    assert "$1.20" in html
    assert "≈ $1.20" not in html
    assert "Awaiting review" in html
    assert f"Take {billed.pk}" in html
    # The player's source is the studio's access-checked media, which the reviewer may play.
    response = reviewer.get(video)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == clip_bytes(seconds=1.0)
    response.close()


def test_the_list_loads_no_video_until_a_preview_is_played(client, staff, scene, account):
    for _ in range(3):
        take = TakeFactory(scene=scene, account=account)
        take.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=1.0)))
        take.job.thumbnail.save("thumbnail.jpg", ContentFile(b"jpeg"))

    html = logged_in(client, staff["reviewer"]).get(TAKES).content.decode()

    assert html.count('class="take-play"') == 3
    assert "<video" not in html
    assert "js/admin_takes.js" in html
    assert "css/admin_takes.css" in html


def test_the_list_has_one_column_each_for_cost_review_selected_and_created_at(
    client, staff, scene, account
):
    TakeFactory(scene=scene, account=account)
    html = logged_in(client, staff["reviewer"]).get(TAKES).content.decode()
    headers = re.findall(r'<th scope="col"\s+class="[^"]*column-([a-z_]+)', html)
    assert headers == [
        "take_number",
        "preview",
        "where",
        "job_summary",
        "cost",
        "review_summary",
        "selected",
        "created",
    ]


def test_the_lists_query_count_does_not_grow_with_its_rows(client, staff, workspace):
    reviewer = logged_in(client, staff["reviewer"])

    def queries_for(rows: int) -> CaptureQueriesContext:
        Take.objects.all().delete()
        for _ in range(rows):
            series = SeriesFactory(workspace=workspace)
            scene = SceneFactory(episode=EpisodeFactory(series=series))
            TakeFactory(scene=scene)  # each with an account of its own
        with CaptureQueriesContext(connection) as captured:
            html = reviewer.get(TAKES).content.decode()
        assert len(_listed(html)) == rows
        return captured

    few, many = queries_for(3), queries_for(15)
    sql = "\n".join(q["sql"] for q in many.captured_queries)
    assert len(few) == len(many), sql


# --- Who sees what ------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer"])
def test_roles_that_review_see_their_workspaces_takes(client, staff, scene, account, role):
    take = TakeFactory(scene=scene, account=account)
    html = logged_in(client, staff[role]).get(TAKES).content.decode()
    assert _listed(html) == [take.pk]


def test_an_outsider_on_staff_sees_only_their_own_teams_takes(client, staff, scene, account):
    ours = TakeFactory(scene=scene, account=account)
    outsider = staff["outsider"]
    theirs_workspace = outsider.memberships.get().workspace
    theirs = TakeFactory(scene=SceneFactory(episode__series__workspace=theirs_workspace))
    outsider_client = logged_in(client, outsider)

    html = outsider_client.get(TAKES).content.decode()
    assert _listed(html) == [theirs.pk]
    assert "Harbour Lights" not in html  # not even as a filter choice

    response = outsider_client.get(reverse("admin:studio_take_change", args=[ours.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    _act(outsider_client, "approve_takes", [ours])
    ours.refresh_from_db()
    assert ours.review_state == Take.Review.PENDING


def test_a_viewer_on_staff_has_no_review_list_even_with_model_permissions(
    client, staff, scene, account
):
    take = TakeFactory(scene=scene, account=account)
    viewer = staff["viewer"]
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_take", "change_take", "view_job"])
    )
    viewer_client = logged_in(client, viewer)

    assert viewer_client.get(TAKES).status_code == 403
    change = reverse("admin:studio_take_change", args=[take.pk])
    assert viewer_client.get(change).status_code == 403
    assert viewer_client.get(reverse("admin:jobs_job_changelist")).status_code == 403
    assert f'href="{TAKES}"' not in viewer_client.get(reverse("admin:index")).content.decode()


def test_the_admin_login_page_still_opens_for_a_visitor(client):
    assert client.get(reverse("admin:login")).status_code == 200


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer"])
def test_a_member_who_reviews_but_is_not_staff_is_sent_to_the_studios_board(
    client, members, workspace, scene, account, role
):
    take = TakeFactory(scene=scene, account=account)
    member = logged_in(client, members[role])
    change = reverse("admin:studio_take_change", args=[take.pk])

    response = member.get(change, follow=True)

    board = reverse("review_episode", args=[workspace.slug, scene.episode_id])
    assert response.redirect_chain[-1][0] == f"{board}?show=all&take={take.pk}"
    assert response.status_code == 200
    assert "data-review-form" in response.content.decode()
    assert "not authorized" not in response.content.decode()

    response = member.get(TAKES, follow=True)
    assert response.redirect_chain[-1][0] == reverse("review_index", args=[workspace.slug])

    # And there they review it: the same record the admin keeps.
    member.post(board, {"take": take.pk, "action": "reject", "codes": ["face"]})
    take.refresh_from_db()
    assert (take.review_state, take.review_codes) == (Take.Review.REJECTED, ["face"])
    assert take.reviewed_by == members[role]


def test_another_teams_take_sends_a_member_to_their_own_review_index_not_its_board(
    client, members, scene, account
):
    ours = TakeFactory(scene=scene, account=account)
    outsider = members["outsider"]
    theirs = outsider.memberships.get().workspace

    response = logged_in(client, outsider).get(
        reverse("admin:studio_take_change", args=[ours.pk]), follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("review_index", args=[theirs.slug])
    assert f"Take {ours.pk}" not in response.content.decode()


def test_a_viewer_who_is_not_staff_still_gets_the_admins_login_page(client, members):
    response = logged_in(client, members["viewer"]).get(TAKES, follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("admin:login"))
    assert "not authorized" in response.content.decode()


def test_a_superuser_sees_every_workspaces_takes(admin_client, scene, account):
    ours = TakeFactory(scene=scene, account=account)
    elsewhere = TakeFactory()  # in a workspace of its own
    assert sorted(_listed(admin_client.get(TAKES).content.decode())) == [ours.pk, elsewhere.pk]


def test_takes_are_neither_added_nor_deleted_in_the_admin(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    owner = logged_in(client, staff["owner"])
    assert owner.get(reverse("admin:studio_take_add")).status_code == 403
    assert owner.get(reverse("admin:studio_take_delete", args=[take.pk])).status_code == 403
    assert 'value="delete_selected"' not in owner.get(TAKES).content.decode()


# --- Filters ------------------------------------------------------------------


def test_the_filters_narrow_the_list_and_offer_only_the_users_workspaces(
    client, staff, workspace, scene, account
):
    other_series = SeriesFactory(workspace=workspace, title="Night Ferry")
    other_episode = EpisodeFactory(series=other_series, number=2, title="Crossing")
    other_scene = SceneFactory(episode=other_episode)
    relay = ProviderAccountFactory(workspace=workspace, name="Relay backup", kind="sora_relay")
    awaiting = TakeFactory(scene=scene, account=account)
    approved = TakeFactory(scene=scene, account=account)
    approved.review_state = Take.Review.APPROVED
    approved.save()
    failed = TakeFactory(scene=other_scene, account=relay, state=JobState.FAILED)
    running = TakeFactory(scene=other_scene, account=account, state=JobState.RUNNING)
    SeriesFactory(title="Someone Else's Show")  # another workspace
    reviewer = logged_in(client, staff["reviewer"])

    def listed(query: str) -> set[int]:
        response = reviewer.get(f"{TAKES}?{query}")
        assert response.status_code == 200
        return set(_listed(response.content.decode()))

    html = reviewer.get(TAKES).content.decode()
    for heading in ("By series", "By episode", "By job state", "By provider account", "By review"):
        assert heading in html
    assert "Night Ferry" in html
    assert "Someone Else's Show" not in html
    assert listed(f"scene__episode__series__id__exact={other_series.pk}") == {failed.pk, running.pk}
    assert listed(f"scene__episode__id__exact={other_episode.pk}") == {failed.pk, running.pk}
    assert listed("job_state=failed") == {failed.pk}
    assert listed(f"job__provider_account__id__exact={relay.pk}") == {failed.pk}
    assert listed("review=pending") == {awaiting.pk}  # an unfinished take awaits nothing yet
    assert listed("review=approved") == {approved.pk}


# --- Reviewing ----------------------------------------------------------------


def test_bulk_approve_reviews_the_finished_takes_and_skips_the_rest(client, staff, scene, account):
    first, second = TakeFactory.create_batch(2, scene=scene, account=account)
    running = TakeFactory(scene=scene, account=account, state=JobState.RUNNING)
    reviewer = staff["reviewer"]

    response = _act(logged_in(client, reviewer), "approve_takes", [first, second, running])

    assert "2 take(s) approved. 1 skipped: not finished" in response.content.decode()
    for take in (first, second):
        take.refresh_from_db()
        assert take.review_state == Take.Review.APPROVED
        assert take.reviewed_by == reviewer
        assert take.reviewed_at is not None
    running.refresh_from_db()
    assert (running.review_state, running.reviewed_by) == (Take.Review.PENDING, None)


def test_rejecting_asks_for_a_reason_and_changes_nothing_without_one(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    reviewer = logged_in(client, staff["reviewer"])

    page = _act(reviewer, "reject_takes", [take]).content.decode()
    assert "Reject these takes?" in page
    assert f"Take {take.pk}: Gulls" in page
    assert 'name="reason"' in page
    assert 'value="Reject takes"' in page

    page = _act(reviewer, "reject_takes", [take], post="yes", reason="   ").content.decode()
    assert "This field is required." in page
    take.refresh_from_db()
    assert (take.review_state, take.reviewed_by) == (Take.Review.PENDING, None)


def test_rejecting_with_a_reason_records_it_and_who_rejected(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    running = TakeFactory(scene=scene, account=account, state=JobState.RUNNING)
    reviewer = staff["reviewer"]

    response = _act(
        logged_in(client, reviewer), "reject_takes", [take, running], post="yes", reason="Too dark."
    )

    page = response.content.decode()
    assert "1 take(s) rejected. 1 skipped: not finished" in page
    assert "Rejected: Too dark." in page
    take.refresh_from_db()
    assert (take.review_state, take.review_reason, take.reviewed_by) == (
        Take.Review.REJECTED,
        "Too dark.",
        reviewer,
    )
    running.refresh_from_db()
    assert running.review_state == Take.Review.PENDING


def test_an_action_without_the_csrf_token_is_refused(staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff["reviewer"])
    response = client.post(
        TAKES, {"action": "approve_takes", "index": 0, "_selected_action": [take.pk]}
    )
    assert response.status_code == 403
    take.refresh_from_db()
    assert take.review_state == Take.Review.PENDING


def test_the_change_form_plays_the_take_and_edits_only_the_review(
    client, staff, workspace, scene, account
):
    take = TakeFactory(scene=scene, account=account)
    take.job.video.save("video.mp4", ContentFile(b"mp4"))
    url = reverse("admin:studio_take_change", args=[take.pk])
    reviewer = logged_in(client, staff["reviewer"])

    page = reviewer.get(url).content.decode()

    video = reverse("take_media", args=[workspace.slug, take.pk, "video"])
    assert f'src="{video}" width="640"' in page
    editable = set(re.findall(r'<(?:input|select|textarea)[^>]* name="([a-z_]+)"', page))
    assert editable - {"csrfmiddlewaretoken", "_save", "_continue"} == {
        "review_state",
        "review_codes",
        "review_reason",
        "review_notes",
        "review_face",
        "review_clothing",
        "review_style",
    }


def test_saving_a_review_in_the_form_records_the_reviewer(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    url = reverse("admin:studio_take_change", args=[take.pk])
    reviewer = staff["reviewer"]

    logged_in(client, reviewer).post(
        url,
        {
            "review_state": "approved",
            "review_reason": "",
            "review_notes": "Lovely light.",
            "_save": 1,
        },
    )

    take.refresh_from_db()
    assert take.review_state == Take.Review.APPROVED
    assert take.review_notes == "Lovely light."
    assert take.reviewed_by == reviewer
    assert take.reviewed_at is not None


def test_the_form_refuses_a_rejection_without_a_reason(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    url = reverse("admin:studio_take_change", args=[take.pk])

    response = logged_in(client, staff["reviewer"]).post(
        url, {"review_state": "rejected", "review_reason": " ", "review_notes": "", "_save": 1}
    )

    assert response.status_code == 200
    assert "Say why the take is rejected" in response.content.decode()
    take.refresh_from_db()
    assert (take.review_state, take.reviewed_by) == (Take.Review.PENDING, None)


def test_an_unfinished_takes_form_offers_notes_but_no_verdict(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account, state=JobState.RUNNING)
    page = (
        logged_in(client, staff["reviewer"])
        .get(reverse("admin:studio_take_change", args=[take.pk]))
        .content.decode()
    )
    assert 'name="review_notes"' in page
    assert 'name="review_state"' not in page
    assert "Not finished (Generating)" in page


# --- Retry and cancel from the same list -------------------------------------


def test_retry_makes_a_new_pending_take_with_the_same_request_at_the_same_account(
    client, staff, scene, account
):
    failed = TakeFactory(
        scene=scene, account=account, state=JobState.FAILED, job__cost_estimate=Decimal("0.40")
    )
    finished = TakeFactory(scene=scene, account=account)
    editor = staff["editor"]

    response = _act(logged_in(client, editor), "retry_takes", [failed, finished])

    new = Take.objects.exclude(pk__in=[failed.pk, finished.pk]).get()
    assert new.scene == scene
    assert new.job.state == JobState.PENDING
    assert new.job.provider_account == account
    assert new.job.request == failed.job.request
    assert new.created_by == editor
    page = response.content.decode()
    assert f"Retried 1: new take(s) {new.pk}." in page
    assert "1 not retried: Only a failed or cancelled take can be retried." in page


def test_a_reviewer_can_neither_retry_nor_cancel(client, staff, scene, account):
    failed = TakeFactory(scene=scene, account=account, state=JobState.FAILED)
    pending = TakeFactory(scene=scene, account=account, state=JobState.PENDING)
    reviewer = logged_in(client, staff["reviewer"])

    html = reviewer.get(TAKES).content.decode()
    assert 'value="approve_takes"' in html
    assert 'value="retry_takes"' not in html
    assert 'value="cancel_takes"' not in html

    _act(reviewer, "retry_takes", [failed])
    _act(reviewer, "cancel_takes", [pending])
    assert Take.objects.count() == 2
    pending.job.refresh_from_db()
    assert pending.job.state == JobState.PENDING


def test_cancel_stops_a_waiting_take(client, staff, scene, account):
    pending = TakeFactory(scene=scene, account=account, state=JobState.PENDING)
    finished = TakeFactory(scene=scene, account=account)

    response = _act(logged_in(client, staff["owner"]), "cancel_takes", [pending, finished])

    pending.job.refresh_from_db()
    finished.job.refresh_from_db()
    assert pending.job.state == JobState.CANCELLED
    assert finished.job.state == JobState.SUCCEEDED
    page = response.content.decode()
    assert "1 take(s) cancelled." in page
    assert "1 not cancelled: it had already finished." in page
