"""The review board in the studio: who may see and decide, what a decision records (the same
record the admin shows), refusals that keep what was typed, bulk review, flags, references
and the board's queries."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from characters.models import CharacterShare
from characters.services import asset_add, character_version_latest
from jobs.models import JobState
from studio.models import Take, TakeScore
from studio.services import take_review
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes
from tests.support.pages import is_fragment, logged_in, visible_text

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
REVIEWERS = ["owner", "editor", "reviewer"]
ADMIN_TAKES = reverse("admin:studio_take_changelist")


@pytest.fixture
def account(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI main")


@pytest.fixture
def episode(workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    return EpisodeFactory(series=series, number=1, title="Fog")


@pytest.fixture
def mina(workspace):
    """A character whose first version has one picture."""
    character = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    asset_add(
        character=character,
        upload=SimpleUploadedFile("front.png", image_bytes(), "image/png"),
        label="front",
    )
    return character


@pytest.fixture
def takes(episode, account, mina):
    """Three finished takes, one per scene (Dawn, Noon, Dusk), each made with Mina v1."""
    version = character_version_latest(mina)
    made = []
    for title in ("Dawn", "Noon", "Dusk"):
        take = TakeFactory(scene=SceneFactory(episode=episode, title=title), account=account)
        take.character_versions.add(version)
        made.append(take)
    return made


def _episode_url(episode) -> str:
    return reverse("review_episode", args=[episode.series.workspace.slug, episode.pk])


def _character_url(workspace, character) -> str:
    return reverse("review_character", args=[workspace.slug, character.pk])


def _decide(client, url: str, take: Take, action: str, *, follow: bool = False, **fields):
    return client.post(url, {"take": take.pk, "action": action, **fields}, follow=follow)


def _flag(take: Take, *, face: float = 41.0, character: str = "Mina") -> TakeScore:
    return TakeScore.objects.create(
        take=take,
        state=TakeScore.State.SCORED,
        face=face,
        clothing=72.0,
        style=80.0,
        persistence=0.9,
        threshold=60,
        flagged=True,
        flag_reasons=[{"axis": "face", "score": face, "character": character}],
    )


def _shown_takes(html: str) -> list[int]:
    """The take numbers of the grid's tiles, in order."""
    return [int(n) for n in re.findall(r'<li class="review-tile[^"]*" id="tile-(\d+)"', html)]


# --- Who may see and decide ----------------------------------------------------------------


@pytest.mark.parametrize("role", REVIEWERS)
def test_the_index_and_both_boards_open_with_a_review_form_for_roles_that_review(
    client, members, workspace, episode, mina, takes, role
):
    reviewer = logged_in(client, members[role])
    assert reviewer.get(reverse("review_index", args=[workspace.slug])).status_code == 200
    for url in (_episode_url(episode), _character_url(workspace, mina)):
        response = reviewer.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "data-review-form" in page
        assert 'name="takes"' in page  # the bulk ticks


def test_a_viewer_watches_the_board_without_a_form_and_may_not_post(
    client, members, workspace, episode, mina, takes
):
    viewer = logged_in(client, members["viewer"])
    for url in (_episode_url(episode), _character_url(workspace, mina)):
        page = viewer.get(url).content.decode()
        assert f"Take {takes[0].pk}" in page
        assert 'name="action"' not in page
        assert 'name="takes"' not in page
        assert _decide(viewer, url, takes[0], "approve").status_code == 403
        bulk = {"bulk": "1", "takes": [takes[0].pk], "action": "approve"}
        assert viewer.post(url, bulk).status_code == 403
    takes[0].refresh_from_db()
    assert (takes[0].review_state, takes[0].reviewed_by) == (Take.Review.PENDING, None)


def test_an_outsider_gets_a_404_for_every_board_and_every_post(
    client, members, workspace, episode, mina, takes
):
    outsider = logged_in(client, members["outsider"])
    urls = [
        reverse("review_index", args=[workspace.slug]),
        _episode_url(episode),
        _character_url(workspace, mina),
    ]
    for url in urls:
        assert outsider.get(url).status_code == 404
    for url in urls[1:]:
        assert _decide(outsider, url, takes[0], "approve").status_code == 404
    takes[0].refresh_from_db()
    assert takes[0].review_state == Take.Review.PENDING


def test_another_teams_episode_character_and_take_are_404_through_our_workspace(
    client, members, workspace, episode, takes
):
    elsewhere = WorkspaceFactory()
    their_episode = EpisodeFactory(series=SeriesFactory(workspace=elsewhere))
    their_take = TakeFactory(scene=SceneFactory(episode=their_episode))
    their_character = CharacterFactory(workspace=elsewhere)
    owner = logged_in(client, members["owner"])

    assert (
        owner.get(_episode_url(their_episode).replace(elsewhere.slug, workspace.slug)).status_code
        == 404
    )
    assert owner.get(_character_url(workspace, their_character)).status_code == 404
    assert _decide(owner, _episode_url(episode), their_take, "approve").status_code == 404
    bulk = {"bulk": "1", "takes": [their_take.pk], "action": "approve"}
    owner.post(_episode_url(episode), bulk)
    their_take.refresh_from_db()
    assert their_take.review_state == Take.Review.PENDING


def test_only_owners_and_editors_may_select_a_take_from_the_board(client, members, episode, takes):
    url = _episode_url(episode)
    reviewer = logged_in(client, members["reviewer"])
    assert "data-select" not in reviewer.get(url).content.decode()
    assert _decide(reviewer, url, takes[0], "select").status_code == 403
    takes[0].refresh_from_db()
    assert not takes[0].is_selected

    editor = logged_in(client, members["editor"])
    response = _decide(editor, url, takes[0], "select", follow=True)
    takes[0].refresh_from_db()
    assert takes[0].is_selected
    assert f"Take {takes[0].pk} is now the selected take of scene 1." in response.content.decode()


def test_the_navigation_links_roles_that_review_to_the_board(client, members, workspace):
    board = f'href="{reverse("review_index", args=[workspace.slug])}"'
    for role in ("owner", "editor", "reviewer", "viewer"):
        page = logged_in(client, members[role]).get(reverse("dashboard", args=[workspace.slug]))
        assert (board in page.content.decode()) is (role != "viewer"), role


# --- What a decision records ---------------------------------------------------------------


def test_approving_records_the_reviewer_notes_and_scores_that_the_admin_shows(
    client, members, episode, takes
):
    reviewer = members["reviewer"]
    reviewer.is_staff = True
    reviewer.save(update_fields=["is_staff"])
    take = takes[0]

    response = _decide(
        logged_in(client, reviewer),
        _episode_url(episode),
        take,
        "approve",
        notes="Lovely light.",
        score_face="85",
        score_clothing="70",
        score_style="",
    )

    assert response.status_code == 302
    take.refresh_from_db()
    assert take.review_state == Take.Review.APPROVED
    assert take.reviewed_by == reviewer
    assert take.reviewed_at is not None
    assert (take.review_notes, take.review_codes) == ("Lovely light.", [])
    assert (take.review_face, take.review_clothing, take.review_style) == (85, 70, None)
    # The admin's take page and list show the same record.
    change = client.get(reverse("admin:studio_take_change", args=[take.pk])).content.decode()
    assert re.search(r'name="review_face" value="85"', change)
    assert re.search(r'name="review_clothing" value="70"', change)
    assert "Lovely light." in change
    assert re.search(r'<option value="approved" selected>', change)
    listing = visible_text(client.get(ADMIN_TAKES).content.decode())
    assert "face 85 · clothing 70" in listing


def test_rejecting_with_codes_records_them_in_the_record_the_admin_edits(
    client, members, episode, takes
):
    reviewer = members["reviewer"]
    reviewer.is_staff = True
    reviewer.save(update_fields=["is_staff"])
    take = takes[1]

    _decide(
        logged_in(client, reviewer),
        _episode_url(episode),
        take,
        "reject",
        codes=["motion", "face"],
        notes="Her hand melts at 0:03.",
        score_face="30",
    )

    take.refresh_from_db()
    assert take.review_state == Take.Review.REJECTED
    assert take.review_codes == ["motion", "face"]
    assert take.review_notes == "Her hand melts at 0:03."
    assert take.review_face == 30
    change = client.get(reverse("admin:studio_take_change", args=[take.pk])).content.decode()
    checked = set(re.findall(r'name="review_codes" value="([a-z_]+)"[^>]*checked', change))
    assert checked == {"motion", "face"}
    assert "Rejected: Motion artefact, Face" in client.get(ADMIN_TAKES).content.decode()

    # And what the admin changes is what the board shows.
    client.post(
        reverse("admin:studio_take_change", args=[take.pk]),
        {
            "review_state": "rejected",
            "review_codes": ["clothing"],
            "review_reason": "Wrong coat.",
            "review_notes": "",
            "review_face": "",
            "review_clothing": "20",
            "review_style": "",
            "_save": 1,
        },
    )
    board = client.get(f"{_episode_url(episode)}?show=all&take={take.pk}").content.decode()
    assert "Rejected by" in board
    assert "Clothing; Wrong coat." in board
    assert re.search(r'name="score_clothing"[^>]*value="20"', board)
    assert re.search(r'value="clothing" data-key="2" checked', board)


def test_a_rejection_without_a_reason_is_refused_in_plain_words_and_keeps_what_was_typed(
    client, members, episode, takes
):
    take = takes[0]
    response = _decide(
        logged_in(client, members["reviewer"]),
        _episode_url(episode),
        take,
        "reject",
        notes="Something is off.",
        score_style="45",
    )

    assert response.status_code == 422
    page = response.content.decode()
    assert "Say why the take is rejected (tick at least one reason)" in page
    assert "Something is off.</textarea>" in page
    assert re.search(r'name="score_style"[^>]*value="45"', page)
    assert f'name="take" value="{take.pk}"' in page
    take.refresh_from_db()
    assert (take.review_state, take.reviewed_by, take.review_notes) == (
        Take.Review.PENDING,
        None,
        "",
    )


def test_a_score_outside_0_to_100_or_no_verdict_is_refused(client, members, episode, takes):
    reviewer = logged_in(client, members["reviewer"])
    url = _episode_url(episode)
    high = _decide(reviewer, url, takes[0], "approve", score_face="140")
    assert high.status_code == 422
    assert "Face score: Ensure this value is less than or equal to 100." in high.content.decode()
    nothing = _decide(reviewer, url, takes[0], "", notes="Hm.")
    assert nothing.status_code == 422
    assert "Choose Approve or Reject." in nothing.content.decode()
    takes[0].refresh_from_db()
    assert takes[0].review_state == Take.Review.PENDING


def test_after_a_decision_the_board_moves_on_to_the_next_take_awaiting_review(
    client, members, episode, takes
):
    first, second, third = takes
    take_review(takes=[second], state=Take.Review.APPROVED)
    reviewer = logged_in(client, members["reviewer"])
    url = _episode_url(episode)

    # A plain form post goes to the board at the next take awaiting review.
    response = _decide(reviewer, url, first, "approve")
    assert response["Location"] == f"{url}?show=awaiting&take={third.pk}"

    # htmx gets the board itself, at that take, and the address to match.
    response = reviewer.post(
        url, {"take": third.pk, "action": "reject", "codes": ["style"], "show": "all"}, headers=HTMX
    )
    assert response.status_code == 200
    assert is_fragment(response)
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="review-board"')
    assert f"Take {third.pk} rejected: Style." in page  # the message, swapped in out of band
    # Nothing awaits review any more: the board says so and offers all takes.
    assert "Nothing awaiting review here." in visible_text(page)
    assert response["HX-Push-Url"] == f"{url}?show=all"


def test_next_and_previous_step_through_the_takes_the_filter_shows(client, members, episode, takes):
    first, second, third = takes
    url = _episode_url(episode)
    page = logged_in(client, members["reviewer"]).get(f"{url}?take={second.pk}").content.decode()
    assert re.search(rf'href="[^"]*take={first.pk}"[^>]*rel="prev"', page)
    assert re.search(rf'href="[^"]*take={third.pk}"[^>]*rel="next"', page)
    assert f'data-take="{second.pk}"' in page


# --- Bulk --------------------------------------------------------------------------------


def test_bulk_approve_reviews_the_ticked_finished_takes_and_counts_the_unfinished(
    client, members, episode, account, takes
):
    running = TakeFactory(scene=takes[0].scene, account=account, state=JobState.RUNNING)
    reviewer = members["reviewer"]
    take_review(takes=[takes[0]], state=Take.Review.REJECTED, codes=["face"], notes="Keep me.")

    response = logged_in(client, reviewer).post(
        _episode_url(episode),
        {
            "bulk": "1",
            "action": "approve",
            "takes": [takes[0].pk, takes[1].pk, running.pk],
            "notes": "",
        },
        follow=True,
    )

    page = response.content.decode()
    assert "2 takes approved. 1 skipped: not finished, so there is nothing to review yet." in page
    for take in takes[:2]:
        take.refresh_from_db()
        assert (take.review_state, take.reviewed_by) == (Take.Review.APPROVED, reviewer)
    assert takes[0].review_codes == []
    assert takes[0].review_notes == "Keep me."  # a blank bulk note leaves each take's own
    takes[2].refresh_from_db()
    running.refresh_from_db()
    assert takes[2].review_state == running.review_state == Take.Review.PENDING


def test_bulk_reject_needs_a_reason_and_keeps_the_ticks_then_records_the_codes(
    client, members, episode, takes
):
    reviewer = logged_in(client, members["reviewer"])
    url = _episode_url(episode)
    ticked = {"bulk": "1", "action": "reject", "takes": [takes[0].pk, takes[2].pk]}

    refused = reviewer.post(url, {**ticked, "notes": "Both drift."})
    assert refused.status_code == 422
    page = refused.content.decode()
    assert "Say why the take is rejected" in page
    assert "Both drift.</textarea>" in page
    ticks = dict(re.findall(r'name="takes" value="(\d+)"[^>]*?( checked)?>', page))
    assert ticks == {
        str(takes[0].pk): " checked",
        str(takes[1].pk): "",
        str(takes[2].pk): " checked",
    }

    reviewer.post(url, {**ticked, "codes": ["continuity"], "notes": "Both drift."})
    for take in (takes[0], takes[2]):
        take.refresh_from_db()
        assert take.review_state == Take.Review.REJECTED
        assert (take.review_codes, take.review_notes) == (["continuity"], "Both drift.")


def test_a_bulk_post_without_ticks_says_so(client, members, episode, takes):
    response = logged_in(client, members["reviewer"]).post(
        _episode_url(episode), {"bulk": "1", "action": "approve"}
    )
    assert response.status_code == 422
    assert "Tick the takes to approve or reject first." in response.content.decode()


# --- The board ---------------------------------------------------------------------------


def test_the_episode_board_groups_finished_takes_by_scene_in_order(
    client, members, episode, account, takes
):
    TakeFactory(scene=takes[0].scene, account=account, state=JobState.FAILED)
    later = TakeFactory(scene=takes[0].scene, account=account)
    html = logged_in(client, members["reviewer"]).get(_episode_url(episode)).content.decode()

    assert _shown_takes(html) == [takes[0].pk, later.pk, takes[1].pk, takes[2].pk]
    headings = re.findall(r'<section class="review-scene">\s*<h3>([^<]+)</h3>', html)
    assert headings == ["Scene 1 · Dawn", "Scene 2 · Noon", "Scene 3 · Dusk"]


def test_a_board_without_finished_takes_says_so(client, members, workspace, episode, mina):
    TakeFactory(scene=SceneFactory(episode=episode), state=JobState.RUNNING)
    reviewer = logged_in(client, members["reviewer"])
    for url in (_episode_url(episode), _character_url(workspace, mina)):
        response = reviewer.get(url)
        assert response.status_code == 200
        assert "No finished takes to review yet." in response.content.decode()
        assert "data-review-form" not in response.content.decode()


def test_the_filters_show_takes_awaiting_review_flagged_or_all(client, members, episode, takes):
    first, second, third = takes
    take_review(takes=[first], state=Take.Review.APPROVED)
    _flag(third)
    reviewer = logged_in(client, members["reviewer"])
    url = _episode_url(episode)

    awaiting = reviewer.get(url).content.decode()
    assert _shown_takes(awaiting) == [second.pk, third.pk]
    assert _shown_takes(reviewer.get(f"{url}?show=flagged").content.decode()) == [third.pk]
    assert _shown_takes(reviewer.get(f"{url}?show=all").content.decode()) == [
        first.pk,
        second.pk,
        third.pk,
    ]
    tabs = visible_text(awaiting)
    assert "Awaiting review 2 Flagged 1 All 3" in tabs


def test_flagged_takes_show_their_flag_and_the_automatic_scores(client, members, episode, takes):
    _flag(takes[1], face=41.0)
    html = (
        logged_in(client, members["reviewer"])
        .get(f"{_episode_url(episode)}?take={takes[1].pk}")
        .content.decode()
    )
    text = visible_text(html)
    assert "Flagged: Face 41 (Mina): below 60" in text  # beside the player
    assert text.count("Face 41 (Mina): below 60") == 2  # and on its tile
    assert "Automatic Face 41 Clothing 72 Style 80 Persistence 0.90" in text
    assert 'placeholder="auto 41"' in html


def test_the_references_are_those_of_the_version_the_take_was_made_with(
    client, members, workspace, episode, mina, takes
):
    first_picture = mina.assets.get()
    # A new look: Mina's second version adds a profile picture; the takes stay with v1.
    profile = asset_add(
        character=mina,
        upload=SimpleUploadedFile("profile.png", image_bytes(color=(0, 0, 200)), "image/png"),
        label="profile",
    )
    assert character_version_latest(mina).number == 2
    slug = workspace.slug

    for url in (_episode_url(episode), _character_url(workspace, mina)):
        html = logged_in(client, members["reviewer"]).get(url).content.decode()
        refs = html[html.index('id="review-refs-heading"') :]
        assert "Mina" in refs
        assert re.search(r'title="The version of Mina this take was made with">v1</span>', refs)
        assert reverse("asset_file", args=[slug, mina.pk, first_picture.pk, "thumbnail"]) in refs
        assert reverse("asset_file", args=[slug, mina.pk, profile.pk, "thumbnail"]) not in refs


def test_a_shared_characters_board_shows_only_this_workspaces_takes(
    client, members, workspace, account
):
    partner = WorkspaceFactory()
    keeper = CharacterFactory(workspace=partner, name="Keeper", handle="keeper")
    CharacterShare.objects.create(
        character=keeper, workspace=workspace, status=CharacterShare.Status.ACCEPTED
    )
    version = character_version_latest(keeper)
    ours = TakeFactory(scene__episode__series__workspace=workspace, account=account)
    theirs = TakeFactory(scene__episode__series__workspace=partner)
    for take in (ours, theirs):
        take.character_versions.add(version)
    reviewer = logged_in(client, members["reviewer"])

    html = reviewer.get(_character_url(workspace, keeper)).content.decode()
    assert _shown_takes(html) == [ours.pk]
    assert (
        _decide(reviewer, _character_url(workspace, keeper), theirs, "approve").status_code == 404
    )

    index = visible_text(
        reviewer.get(reverse("review_index", args=[workspace.slug])).content.decode()
    )
    assert f"Keeper @keeper · shared by {partner.name} 1 0 1" in index


def test_the_index_counts_each_episodes_and_characters_takes_awaiting_review_and_flagged(
    client, members, workspace, episode, mina, takes, account
):
    take_review(takes=[takes[0]], state=Take.Review.APPROVED)
    _flag(takes[1])
    TakeFactory(scene=takes[0].scene, account=account, state=JobState.RUNNING)  # not counted
    quiet = EpisodeFactory(series=episode.series, number=2, title="Calm")  # nothing finished

    text = visible_text(
        logged_in(client, members["reviewer"])
        .get(reverse("review_index", args=[workspace.slug]))
        .content.decode()
    )
    assert "Harbour Lights · Episode 1: Fog 2 1 3" in text
    assert "Mina @mina 2 1 3" in text
    assert quiet.title not in text


def test_the_episode_boards_queries_do_not_grow_with_its_takes(
    client, members, workspace, episode, mina, account
):
    reviewer = logged_in(client, members["reviewer"])
    version = character_version_latest(mina)

    def queries_for(count: int) -> CaptureQueriesContext:
        Take.objects.all().delete()
        for n in range(count):
            take = TakeFactory(scene=SceneFactory(episode=episode), account=account)
            take.character_versions.add(version)
            if n % 2:
                _flag(take)
        with CaptureQueriesContext(connection) as captured:
            html = reviewer.get(f"{_episode_url(episode)}?show=all").content.decode()
        assert len(_shown_takes(html)) == count
        return captured

    few, many = queries_for(3), queries_for(12)
    sql = "\n".join(query["sql"] for query in many.captured_queries)
    assert len(few) == len(many), sql


# --- The service -------------------------------------------------------------------------


def test_the_service_refuses_unknown_codes_and_scores_outside_0_to_100(takes):
    with pytest.raises(ValidationError, match="not a reason"):
        take_review(takes=takes, state=Take.Review.REJECTED, codes=["lighting"])
    with pytest.raises(ValidationError, match="whole number from 0 to 100"):
        take_review(takes=takes, state=Take.Review.APPROVED, scores={"face": 101})
    with pytest.raises(ValidationError, match="not “mood”"):
        take_review(takes=takes, state=Take.Review.APPROVED, scores={"mood": 50})
    assert not Take.objects.exclude(review_state=Take.Review.PENDING).exists()


def test_approving_a_rejected_take_clears_its_codes_and_reason_but_keeps_notes_and_scores(
    takes,
):
    take = takes[0]
    take_review(
        takes=[take],
        state=Take.Review.REJECTED,
        codes=["face", "face", "style"],
        reason="Too dark.",
        notes="Relight.",
        scores={"face": 20},
    )
    take.refresh_from_db()
    assert (take.review_codes, take.review_reason) == (["face", "style"], "Too dark.")

    take_review(takes=[take], state=Take.Review.APPROVED)
    take.refresh_from_db()
    assert (take.review_codes, take.review_reason) == ([], "")
    assert (take.review_notes, take.review_face) == ("Relight.", 20)


def test_the_old_callers_reason_in_words_still_rejects(takes):
    assert take_review(takes=takes[:1], state=Take.Review.REJECTED, reason="Too dark.") == 1
