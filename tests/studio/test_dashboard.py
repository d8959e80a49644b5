"""The workspace dashboard shows the work: takes in progress (polled), awaiting review and
failed, this month's spend against the budget, and recent activity; each links to its place,
only the workspace's own data appears, and its queries do not grow with the work."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import ledger
from jobs.ledger import WORKSPACE
from jobs.models import Budget, ErrorCode, JobState, ProviderAccount
from jobs.services import budget_set, job_create
from studio.models import Role, Scene, Take, Workspace
from studio.services import take_review
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SceneFactory,
    SeriesFactory,
    UserFactory,
)
from tests.jobs.factories import ProviderAccountFactory, job_request
from tests.support.pages import visible_text

pytestmark = pytest.mark.django_db

POLL = {"HX-Request": "true", "HX-Target": "in-progress"}
# The way a job gets from waiting to each state (Job.move only ever moves forward).
ROUTE = {
    JobState.PENDING: [],
    JobState.SUBMITTING: [JobState.SUBMITTING],
    JobState.QUEUED: [JobState.SUBMITTING, JobState.QUEUED],
    JobState.RUNNING: [JobState.SUBMITTING, JobState.QUEUED, JobState.RUNNING],
    JobState.DOWNLOADING: [JobState.SUBMITTING, JobState.RUNNING, JobState.DOWNLOADING],
    JobState.SUCCEEDED: [JobState.SUBMITTING, JobState.RUNNING, JobState.SUCCEEDED],
    JobState.FAILED: [JobState.SUBMITTING, JobState.RUNNING, JobState.FAILED],
    JobState.CANCELLED: [JobState.CANCELLED],
}


# --- Building work --------------------------------------------------------------------


def make_take(
    scene: Scene,
    account: ProviderAccount,
    *,
    state: str = JobState.PENDING,
    progress: int = 0,
    estimate: str = "0.80",
    charged: str | None = None,
    prompt: str = "A lamp flickers in the harbour fog.",
    by=None,
    **finish,
) -> Take:
    """A take made as the studio makes one (job_create reserves its estimate in the ledger),
    moved to `state` with Job.move; an ended one is settled as the pipeline settles it."""
    job = job_create(
        workspace=account.workspace,
        account=account,
        request=job_request(prompt, seconds=8),
        cost_estimate=Decimal(estimate),
    )
    take = Take.objects.create(scene=scene, job=job, created_by=by)
    for step in ROUTE[state]:
        fields = {"progress": progress} if step != JobState.SUCCEEDED else {}
        if step == state == JobState.SUCCEEDED:
            fields = {
                "progress": 100,
                "cost_actual": Decimal(charged or estimate),
                "thumbnail": f"workspaces/{job.workspace_id}/jobs/{job.pk}/thumbnail.jpg",
                "result": {"duration": 8.0, "width": 1280, "height": 720},
            }
        if step == state:
            fields |= finish
        assert job.move(step, **fields)
    if job.is_terminal:
        ledger.settle(job)
    return take


@pytest.fixture
def account(workspace) -> ProviderAccount:
    return ProviderAccountFactory(workspace=workspace, name="OpenAI main", kind="openai")


@pytest.fixture
def lamp(workspace) -> Scene:
    """Scene 1, "The lamp", of episode 2 "Night watch" of "Harbour Lights"."""
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    episode = EpisodeFactory(series=series, number=2, title="Night watch")
    return SceneFactory(episode=episode, title="The lamp")


def _dashboard(workspace: Workspace) -> str:
    return reverse("dashboard", args=[workspace.slug])


def _page(client: Client, workspace: Workspace) -> str:
    response = client.get(_dashboard(workspace))
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, section_id: str) -> str:
    """One section of the page, from its opening tag to its end."""
    match = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert match, f"no #{section_id} section"
    return match.group(0)


def _anchor(take: Take) -> str:
    """The end of a link to the take's card (the quote keeps take 1 from matching take 14)."""
    return f'#take-{take.pk}"'


def _at_take(take: Take) -> str:
    """The take's card on its scene's page."""
    slug = take.scene.episode.series.workspace.slug
    return f"{reverse('scene_detail', args=[slug, take.scene_id])}#take-{take.pk}"


# --- In progress ------------------------------------------------------------------------


def test_it_shows_each_take_in_progress_with_its_scene_provider_state_progress_and_price(
    owner_client, workspace, account, lamp
):
    running = make_take(lamp, account, state=JobState.RUNNING, progress=40, estimate="1.20")
    waiting = make_take(lamp, account)
    finished = make_take(lamp, account, state=JobState.SUCCEEDED)
    section = _section(_page(owner_client, workspace), "in-progress")
    words = visible_text(section)
    assert "S1 · The lamp" in words
    assert "Episode 2: Night watch · Harbour Lights" in words
    assert "Generating" in words
    assert "Waiting" in words
    assert "OpenAI main · about $1.20 · going for" in words
    assert 'value="40"' in section
    assert f'aria-label="Take {running.pk} progress"' in section
    assert f'href="{_at_take(running)}"' in section
    assert f'href="{_at_take(waiting)}"' in section
    assert _anchor(finished) not in section
    # Newest first.
    assert section.index(_anchor(waiting)) < section.index(_anchor(running))


@pytest.mark.parametrize(
    "state",
    [JobState.SUBMITTING, JobState.QUEUED, JobState.DOWNLOADING],
)
def test_every_unfinished_state_counts_as_in_progress(
    owner_client, workspace, account, lamp, state
):
    take = make_take(lamp, account, state=state)
    section = _section(_page(owner_client, workspace), "in-progress")
    assert _anchor(take) in section
    assert JobState(state).label in visible_text(section)


def test_the_in_progress_block_polls_the_dashboard_while_work_is_in_flight(
    owner_client, workspace, account, lamp
):
    take = make_take(lamp, account, state=JobState.RUNNING, progress=10)
    section = _section(_page(owner_client, workspace), "in-progress")
    assert f'hx-get="{_dashboard(workspace)}?shown={take.pk}"' in section
    assert 'hx-trigger="every 3s"' in section

    response = owner_client.get(f"{_dashboard(workspace)}?shown={take.pk}", headers=POLL)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="in-progress"')
    assert "hx-trigger" in fragment
    assert "S1 · The lamp" in fragment
    assert "<h1>" not in fragment
    assert 'id="spend"' not in fragment
    assert "HX-Target" in response["Vary"]


def test_the_poll_answers_286_once_nothing_is_in_progress(owner_client, workspace, account, lamp):
    take = make_take(lamp, account, state=JobState.RUNNING)
    take.job.move(JobState.SUCCEEDED, cost_actual=Decimal("0.80"))
    response = owner_client.get(f"{_dashboard(workspace)}?shown={take.pk}", headers=POLL)
    assert response.status_code == 286
    fragment = response.content.decode()
    assert "Nothing in progress." in visible_text(fragment)
    assert "hx-trigger" not in _section(fragment, "in-progress")


def test_a_poll_after_a_take_ended_also_refreshes_what_the_take_changed(
    owner_client, workspace, account, lamp
):
    ended = make_take(lamp, account, state=JobState.RUNNING)
    still = make_take(lamp, account, state=JobState.QUEUED)
    ended.job.move(JobState.SUCCEEDED, cost_actual=Decimal("0.80"))
    url = f"{_dashboard(workspace)}?shown={ended.pk},{still.pk}"
    fragment = owner_client.get(url, headers=POLL).content.decode()
    for section in ("awaiting", "failures", "spend", "activity"):
        assert f'<section id="{section}"' in fragment
        assert 'hx-swap-oob="true"' in _section(fragment, section)
    assert _anchor(ended) in _section(fragment, "awaiting")
    # While the same takes are still in progress, the poll carries nothing else.
    quiet = owner_client.get(f"{_dashboard(workspace)}?shown={still.pk}", headers=POLL)
    assert 'id="awaiting"' not in quiet.content.decode()


def test_a_page_without_work_in_progress_does_not_poll(owner_client, workspace, account, lamp):
    make_take(lamp, account, state=JobState.SUCCEEDED)
    page = _page(owner_client, workspace)
    assert "hx-trigger" not in page
    assert "Nothing in progress." in visible_text(_section(page, "in-progress"))


def test_a_long_queue_shows_the_newest_takes_and_says_how_many_more(
    owner_client, workspace, account, lamp
):
    takes = [make_take(lamp, account) for _ in range(14)]
    section = _section(_page(owner_client, workspace), "in-progress")
    assert section.count('class="work-item in-flight"') == 12
    assert _anchor(takes[0]) not in section
    assert _anchor(takes[-1]) in section
    assert "And 2 more; the newest are shown." in visible_text(section)
    assert '<span class="badge count">14</span>' in section


# --- Awaiting review --------------------------------------------------------------------


def test_takes_awaiting_review_show_their_thumbnail_count_and_a_link_to_the_take(
    owner_client, workspace, account, lamp, owner
):
    pending = make_take(lamp, account, state=JobState.SUCCEEDED)
    approved = make_take(lamp, account, state=JobState.SUCCEEDED)
    take_review(takes=[approved], state=Take.Review.APPROVED, reviewer=owner)
    running = make_take(lamp, account, state=JobState.RUNNING)
    section = _section(_page(owner_client, workspace), "awaiting")
    thumbnail = reverse("take_media", args=[workspace.slug, pending.pk, "thumbnail"])
    assert f'<img src="{thumbnail}"' in section
    assert f'href="{_at_take(pending)}"' in section
    assert "S1 · The lamp" in visible_text(section)
    assert '<span class="badge count">1</span>' in section
    assert _anchor(approved) not in section
    assert _anchor(running) not in section


@pytest.mark.parametrize(
    ("role", "linked"),
    [("owner", True), ("editor", True), ("reviewer", True), ("viewer", False)],
)
def test_those_who_may_review_get_a_link_to_the_review_board(
    client, workspace, members, account, lamp, role, linked
):
    make_take(lamp, account, state=JobState.SUCCEEDED)
    client.force_login(members[role])
    section = _section(_page(client, workspace), "awaiting")
    board = f'href="{reverse("review_index", args=[workspace.slug])}"'
    assert (board in section) is linked


# --- Failures ---------------------------------------------------------------------------


def test_recent_failures_show_the_plain_reason_the_prompt_and_a_link_to_retry(
    owner_client, workspace, account, lamp
):
    blocked = make_take(
        lamp,
        account,
        state=JobState.FAILED,
        prompt="The keeper lights the lamp.",
        error_code=ErrorCode.MODERATION,
        error_message="The provider's moderation refused the prompt.",
    )
    coded = make_take(lamp, account, state=JobState.FAILED, error_code=ErrorCode.QUOTA)
    section = _section(_page(owner_client, workspace), "failures")
    words = visible_text(section)
    assert "The provider's moderation refused the prompt." in words
    assert "Out of quota" in words  # no message: the error code's label
    assert "The keeper lights the lamp." in words
    assert f'href="{_at_take(blocked)}"' in section
    assert f'href="{_at_take(coded)}"' in section
    assert "Retry it or edit the prompt" in words
    assert '<span class="badge count failed">2</span>' in section


def test_failures_older_than_two_weeks_and_cancelled_takes_are_not_listed(
    owner_client, workspace, account, lamp
):
    old = make_take(lamp, account, state=JobState.FAILED, error_message="Old trouble.")
    old.job.__class__.objects.filter(pk=old.job_id).update(
        finished_at=timezone.now() - timedelta(days=15)
    )
    cancelled = make_take(lamp, account, state=JobState.CANCELLED)
    section = _section(_page(owner_client, workspace), "failures")
    assert _anchor(old) not in section
    assert _anchor(cancelled) not in section
    assert "No take failed in the last 14 days." in visible_text(section)


def test_a_failure_whose_scene_was_tried_again_says_so(owner_client, workspace, account, lamp):
    failed = make_take(lamp, account, state=JobState.FAILED, error_message="Timed out.")
    alone = make_take(
        SceneFactory(episode=lamp.episode, title="The gulls"),
        account,
        state=JobState.FAILED,
        error_message="Timed out.",
    )
    make_take(lamp, account)  # a newer take of the lamp
    section = _section(_page(owner_client, workspace), "failures")
    lamp_item = re.search(rf"#take-{failed.pk}\".*?</li>", section, re.S).group(0)
    gulls_item = re.search(rf"#take-{alone.pk}\".*?</li>", section, re.S).group(0)
    assert "tried again since" in lamp_item
    assert "tried again since" not in gulls_item


# --- Spend ------------------------------------------------------------------------------


def test_spend_shows_the_workspace_budget_bar_charges_reservations_and_a_chart(
    owner_client, workspace, account, lamp
):
    budget_set(workspace=workspace, scope=WORKSPACE, cap=Decimal("10"), period="month")
    make_take(lamp, account, state=JobState.SUCCEEDED, estimate="1.00", charged="2.50")
    make_take(lamp, account, state=JobState.RUNNING, estimate="1.50")
    make_take(lamp, account, state=JobState.FAILED)  # charged nothing
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay")
    make_take(lamp, relay, state=JobState.SUCCEEDED, estimate="0.50")
    section = _section(_page(owner_client, workspace), "spend")
    words = visible_text(section)
    budget = Budget.objects.get(workspace=workspace, scope=WORKSPACE)
    assert ledger.committed(budget) == Decimal("4.50")  # what the ledger refuses takes by
    assert "$4.50 of the workspace's $10.00 this month; $5.50 left." in words
    assert "$3.00 charged · $1.50 reserved for takes in progress" in words
    assert '<rect class="charged" width="30.0"' in section
    assert '<rect class="reserved" x="30.0" width="15.0"' in section
    assert '<svg class="chart chart-rows"' in section
    assert "Charged in " in section
    assert "by provider account" in section
    assert words.index("OpenAI main $2.50") < words.index("Relay $0.50")
    assert f'href="{reverse("costs", args=[workspace.slug])}"' in section


def test_a_spent_budget_says_new_takes_are_refused(owner_client, workspace, account, lamp):
    budget_set(workspace=workspace, scope=WORKSPACE, cap=Decimal("2"), period="month")
    make_take(lamp, account, state=JobState.SUCCEEDED, estimate="2.00")
    words = visible_text(_section(_page(owner_client, workspace), "spend"))
    assert "nothing left" in words
    assert "new takes are refused" in words


@pytest.mark.parametrize(("role", "offered"), [("owner", True), ("editor", False)])
def test_without_a_workspace_budget_it_says_so_and_owners_are_sent_to_costs(
    client, workspace, members, role, offered
):
    client.force_login(members[role])
    section = _section(_page(client, workspace), "spend")
    assert "The workspace has no monthly budget" in visible_text(section)
    cap_link = f'href="{reverse("costs", args=[workspace.slug])}#budget-workspace"'
    assert (cap_link in section) is offered
    assert ("owners can set one on the Costs page" in visible_text(section)) is not offered
    assert "budget-bar" not in section


# --- Activity ---------------------------------------------------------------------------


def test_recent_activity_tells_who_did_what_and_links_to_it(
    client, workspace, members, account, lamp
):
    editor, reviewer = members["editor"], members["reviewer"]
    character = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    character.created_by = editor
    character.save()
    approved = make_take(lamp, account, state=JobState.SUCCEEDED, by=editor)
    take_review(takes=[approved], state=Take.Review.APPROVED, reviewer=reviewer)
    rejected = make_take(lamp, account, state=JobState.SUCCEEDED, by=editor)
    take_review(takes=[rejected], state=Take.Review.REJECTED, reason="Too dark", reviewer=reviewer)
    failed = make_take(lamp, account, state=JobState.FAILED, error_message="Timed out.")
    started = make_take(lamp, account, by=editor)
    client.force_login(members["viewer"])
    section = _section(_page(client, workspace), "activity")
    words = visible_text(section)
    user = editor.get_username()
    assert f"{user} started take {started.pk} of S1 · The lamp at OpenAI main" in words
    assert f"Take {failed.pk} of S1 · The lamp failed: Timed out." in words
    assert f"Take {approved.pk} of S1 · The lamp finished" in words
    assert f"{reviewer.get_username()} approved take {approved.pk} of S1 · The lamp" in words
    assert f"{reviewer.get_username()} rejected take {rejected.pk} of S1 · The lamp (Too dark)" in (
        words
    )
    assert f"{user} added the character Mina (@mina)" in words
    assert "New series Harbour Lights" in words
    assert "New episode Episode 2: Night watch of Harbour Lights" in words
    assert f'href="{_at_take(started)}"' in section
    assert f'href="{reverse("character_detail", args=[workspace.slug, character.pk])}"' in section
    assert f'href="{reverse("episode_detail", args=[workspace.slug, lamp.episode_id])}"' in section
    assert "just now" in words
    assert section.count('<li class="event') <= 15


def test_the_feed_keeps_only_the_latest_fifteen_events(owner_client, workspace, account, lamp):
    for _ in range(12):
        make_take(lamp, account, state=JobState.SUCCEEDED)  # started and finished: 24 events
    section = _section(_page(owner_client, workspace), "activity")
    assert section.count('<li class="event') == 15


# --- Scope and roles --------------------------------------------------------------------


@pytest.fixture
def elsewhere():
    """Another workspace full of work under names that appear nowhere else."""
    other = MembershipFactory(role=Role.OWNER, user=UserFactory(username="stranger")).workspace
    account = ProviderAccountFactory(workspace=other, name="Rival account")
    budget_set(workspace=other, scope=WORKSPACE, cap=Decimal("77"), period="month")
    series = SeriesFactory(workspace=other, title="Rival saga")
    scene = SceneFactory(
        episode=EpisodeFactory(series=series, number=9, title="Rival night"), title="Rival shot"
    )
    CharacterFactory(workspace=other, name="Rival", handle="rival")
    takes = [
        make_take(scene, account, state=JobState.RUNNING, estimate="6.66"),
        make_take(scene, account, state=JobState.SUCCEEDED, estimate="6.66"),
        make_take(scene, account, state=JobState.FAILED, error_message="Rival failure."),
    ]
    return other, takes


def test_another_workspaces_work_never_appears(owner_client, workspace, account, lamp, elsewhere):
    _, their_takes = elsewhere
    make_take(lamp, account, state=JobState.RUNNING)
    # Without the machine-readable times, whose microseconds may hold any digits ("46.662").
    page = re.sub(r'datetime="[^"]*"', "", _page(owner_client, workspace))
    for word in ("Rival", "6.66", "77.00", "stranger"):
        assert word not in page
    for take in their_takes:
        assert _anchor(take) not in page
    poll = owner_client.get(f"{_dashboard(workspace)}?shown=0", headers=POLL)
    assert "Rival" not in poll.content.decode()


def test_an_outsider_gets_no_dashboard_and_no_poll(client, workspace, members, account, lamp):
    make_take(lamp, account, state=JobState.RUNNING)
    client.force_login(members["outsider"])
    assert client.get(_dashboard(workspace)).status_code == 404
    assert client.get(_dashboard(workspace), headers=POLL).status_code == 404


def test_a_viewer_sees_the_work_but_nothing_to_act_on(client, workspace, members, account, lamp):
    make_take(lamp, account, state=JobState.RUNNING)
    make_take(lamp, account, state=JobState.SUCCEEDED)
    make_take(lamp, account, state=JobState.FAILED, error_message="Timed out.")
    viewer = members["viewer"]
    viewer.is_staff = True  # staff, but not a reviewer here
    viewer.save(update_fields=["is_staff"])
    client.force_login(viewer)
    page = _page(client, workspace)
    words = visible_text(page)
    assert "S1 · The lamp" in _section(page, "in-progress")
    assert "S1 · The lamp" in _section(page, "awaiting")
    assert "Timed out." in words
    assert "See the take" in words
    for action in ("Retry it", "review queue", "set a cap"):
        assert action not in words
    for name in ("series_create", "character_create"):
        assert reverse(name, args=[workspace.slug]) not in page
    assert "<form" not in _section(page, "failures")


# --- Queries and the empty workspace ------------------------------------------------------


def _work(workspace: Workspace, takes: int) -> None:
    """`takes` takes across scenes of two series, in every state, reviewed by two people."""
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay")
    budget_set(workspace=workspace, scope=WORKSPACE, cap=Decimal("500"), period="month")
    people = [UserFactory(), UserFactory()]
    scenes = [
        SceneFactory(episode=EpisodeFactory(series=SeriesFactory(workspace=workspace)))
        for _ in range(3)
    ]
    CharacterFactory(workspace=workspace, created_by=people[0])
    states = [
        JobState.RUNNING,
        JobState.PENDING,
        JobState.SUCCEEDED,
        JobState.SUCCEEDED,
        JobState.FAILED,
    ]
    for n in range(takes):
        state = states[n % len(states)]
        take = make_take(
            scenes[n % 3],
            (account, relay)[n % 2],
            state=state,
            by=people[n % 2],
            error_message="Timed out." if state == JobState.FAILED else "",
        )
        if state == JobState.SUCCEEDED and n % 2:
            take_review(takes=[take], state=Take.Review.APPROVED, reviewer=people[1])


def _queries(client: Client, url: str, **headers) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code in (200, 286)
    return [query["sql"] for query in captured.captured_queries]


def _same_count(small: list[str], large: list[str]) -> None:
    if len(small) != len(large):
        listing = "\n".join([f"5 takes ({len(small)}):", *small, "", f"50 ({len(large)}):", *large])
        pytest.fail(f"{len(small)} queries for 5 takes, {len(large)} for 50:\n{listing}")


@pytest.fixture
def two_workspaces(client, owner):
    """A workspace with 5 takes and one with 50, both the logged-in owner's."""
    client.force_login(owner)
    small, large = (MembershipFactory(user=owner, role="owner").workspace for _ in range(2))
    _work(small, 5)
    _work(large, 50)
    return small, large


def test_the_dashboard_costs_the_same_queries_for_5_takes_as_for_50(
    client, two_workspaces, django_assert_max_num_queries
):
    small, large = two_workspaces
    client.get(_dashboard(small))  # the session settles on a workspace once
    small_sql = _queries(client, _dashboard(small))
    client.get(_dashboard(large))
    with django_assert_max_num_queries(len(small_sql)):
        large_sql = _queries(client, _dashboard(large))
    _same_count(small_sql, large_sql)


def test_the_poll_costs_the_same_queries_for_5_takes_as_for_50(
    client, two_workspaces, django_assert_max_num_queries
):
    small, large = two_workspaces
    for refresh in ("", "0"):  # the block alone, then with the sections a finished take changes
        small_sql = _queries(client, f"{_dashboard(small)}?shown={refresh}", **POLL)
        with django_assert_max_num_queries(len(small_sql)):
            large_sql = _queries(client, f"{_dashboard(large)}?shown={refresh}", **POLL)
        _same_count(small_sql, large_sql)


def test_an_empty_workspace_reads_well(owner_client, workspace):
    page = _page(owner_client, workspace)
    words = visible_text(page)
    for line in (
        "Nothing in progress.",
        "Nothing awaits review.",
        "No take failed in the last 14 days.",
        "The workspace has no monthly budget",
        "$0.00 charged · $0.00 reserved for takes in progress",
        "Nothing charged yet this month.",
        "Nothing has happened here yet.",
        "No series yet.",
    ):
        assert line in words
    for broken in ("<progress", "budget-bar", '<svg class="chart', "hx-trigger", "None"):
        assert broken not in page


def test_owners_see_how_many_character_offers_wait_for_them(client, members, workspace):
    from characters.models import CharacterShare
    from tests.factories import CharacterFactory

    stranger = CharacterFactory()  # another team's character, offered to this workspace
    CharacterShare.objects.create(
        character=stranger, workspace=workspace, offered_slug=workspace.slug
    )
    url = reverse("dashboard", args=[workspace.slug])

    client.force_login(members["owner"])
    page = client.get(url).content.decode()
    assert "1 character offered to this workspace is waiting for an owner" in page
    assert f"{reverse('character_list', args=[workspace.slug])}#offers" in page

    client.force_login(members["editor"])  # only owners can answer an offer
    assert "offered to this workspace" not in client.get(url).content.decode()
