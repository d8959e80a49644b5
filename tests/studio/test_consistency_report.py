"""The consistency report: per character, provider account and method, over the workspace's
scored takes; its filters, its CSV, its permissions, and a query count that does not grow
with the takes."""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from characters.models import Character
from jobs.models import ProviderAccount
from studio.consistency.selectors import ReportFilters, ReportLine, consistency_report
from studio.models import CharacterScore, Scene, Take, TakeScore, Workspace
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.support.pages import visible_text

pytestmark = pytest.mark.django_db

NATIVE, IMAGES, CLIP = (
    CharacterScore.Method.NATIVE,
    CharacterScore.Method.IMAGES,
    CharacterScore.Method.CLIP,
)
APPROVED, REJECTED, PENDING = Take.Review.APPROVED, Take.Review.REJECTED, Take.Review.PENDING


@dataclass(frozen=True)
class Seen:
    """One character as the scorer saw it in a take: (face, clothing, style), persistence."""

    character: Character
    axes: tuple[float | None, float | None, float | None]
    persistence: float
    method: str = IMAGES


def scored_take(
    scene: Scene,
    account: ProviderAccount,
    *seen: Seen,
    review: str = PENDING,
    review_face: int | None = None,
    cost: str | None = "0.80",
    estimate: str = "0.80",
    seconds: float = 8.0,
    state: str = TakeScore.State.SCORED,
    threshold: int = 60,
) -> Take:
    """A finished take at `account` with its score rows, as the scorer stores them."""
    take = TakeFactory(
        scene=scene,
        account=account,
        review_state=review,
        review_face=review_face,
        job__cost_actual=Decimal(cost) if cost is not None else None,
        job__cost_estimate=Decimal(estimate),
        job__result={"duration": seconds, "width": 1280, "height": 720},
    )
    score = TakeScore.objects.create(take=take, state=state, threshold=threshold)
    for character in seen:
        face, clothing, style = character.axes
        CharacterScore.objects.create(
            take_score=score,
            character=character.character,
            method=character.method,
            face=face,
            clothing=clothing,
            style=style,
            persistence=character.persistence,
        )
    return take


@pytest.fixture
def studio(workspace):
    """Two accounts, two characters and four scored takes (see the test for the sums)."""
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    scene = SceneFactory(episode=EpisodeFactory(series=series))
    sora = ProviderAccountFactory(workspace=workspace, name="Sora", kind="openai")
    kling = ProviderAccountFactory(workspace=workspace, name="Kling", kind="kling")
    mina = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    joe = CharacterFactory(workspace=workspace, name="Joe", handle="joe")
    takes = [
        scored_take(scene, sora, Seen(mina, (60, 50, 70), 0.4), review=APPROVED, review_face=55),
        scored_take(scene, sora, Seen(mina, (80, 70, 90), 0.9), review=REJECTED),
        scored_take(
            scene,
            kling,
            Seen(mina, (92, 88, 90), 1.0, method=CLIP),
            review=APPROVED,
            cost=None,
            estimate="1.20",
            seconds=5.0,
        ),
        # Two characters in one take: Joe shows no face to score.
        scored_take(scene, sora, Seen(joe, (None, 40, 80), 0.6), Seen(mina, (70, 60, 80), 0.5)),
    ]
    return {"series": series, "scene": scene, "sora": sora, "kling": kling, "mina": mina,
            "joe": joe, "takes": takes}  # fmt: skip


def _line(lines: list[ReportLine], character: str, account: str, method: str) -> ReportLine:
    return next(
        line
        for line in lines
        if (line.character_name, line.account_name, line.method) == (character, account, method)
    )


def test_the_report_adds_up_each_character_at_each_account_and_method(workspace, studio):
    report = consistency_report(workspace=workspace)

    assert report.takes == 4
    assert [(line.character_name, line.account_name, line.method) for line in report.lines] == [
        ("Joe", "Sora", IMAGES),
        ("Mina", "Kling", CLIP),
        ("Mina", "Sora", IMAGES),
    ]
    mina = _line(report.lines, "Mina", "Sora", IMAGES)
    assert mina.takes == 3
    assert (mina.face, mina.clothing, mina.style) == (70.0, 60.0, 80.0)
    assert (mina.review_face, mina.review_clothing, mina.review_style) == (55.0, None, None)
    assert mina.persistence == 66.7  # recognised (≥ 0.5) in 2 of 3
    assert (mina.reviewed, mina.approved, mina.approval_rate) == (2, 1, 50.0)
    assert mina.cost == Decimal("2.40")  # every take's cost, the rejected one too
    assert mina.approved_seconds == 8.0
    assert mina.cost_per_approved_second == Decimal("0.30")
    assert (mina.flagged, mina.flagged_share) == (1, 33.3)  # clothing 50 < 60; 60 is not below

    joe = _line(report.lines, "Joe", "Sora", IMAGES)
    assert (joe.takes, joe.face, joe.clothing, joe.style) == (1, None, 40.0, 80.0)
    assert joe.persistence == 100.0
    assert (joe.reviewed, joe.approval_rate, joe.cost_per_approved_second) == (0, None, None)
    assert joe.flagged_share == 100.0

    clip = _line(report.lines, "Mina", "Kling", CLIP)
    assert (clip.face, clip.clothing, clip.style, clip.persistence) == (92.0, 88.0, 90.0, 100.0)
    assert clip.approval_rate == 100.0
    assert clip.cost_per_approved_second == Decimal("0.24")  # the estimate: no charge recorded
    assert clip.flagged_share == 0.0


def test_all_characters_together_count_a_take_of_two_characters_once(workspace, studio):
    report = consistency_report(workspace=workspace)

    assert [(line.account_name, line.method) for line in report.totals] == [
        ("Kling", CLIP),
        ("Sora", IMAGES),
    ]
    sora = _line(report.totals, "All characters", "Sora", IMAGES)
    assert sora.takes == 3
    assert sora.face == 70.0  # Joe's missing face is not a zero
    assert sora.clothing == 55.0  # 50, 70, 40, 60: each character's score counts
    assert sora.persistence == 75.0  # 3 of 4 appearances recognised
    assert sora.cost == Decimal("2.40")
    assert sora.cost_per_approved_second == Decimal("0.30")
    assert (sora.flagged, sora.flagged_share) == (2, 66.7)


def test_takes_not_scored_and_other_workspaces_takes_never_count(workspace, studio):
    scene, sora, mina = studio["scene"], studio["sora"], studio["mina"]
    for state in (TakeScore.State.PENDING, TakeScore.State.FAILED, TakeScore.State.SKIPPED):
        scored_take(scene, sora, Seen(mina, (1, 1, 1), 0.0), state=state)
    elsewhere = Workspace.objects.create(name="Rival", slug="rival")
    their_scene = SceneFactory(episode=EpisodeFactory(series=SeriesFactory(workspace=elsewhere)))
    theirs = ProviderAccountFactory(workspace=elsewhere, name="Sora")
    their_mina = CharacterFactory(workspace=elsewhere, name="Mina", handle="mina")
    scored_take(their_scene, theirs, Seen(their_mina, (1, 1, 1), 0.0), review=APPROVED)

    report = consistency_report(workspace=workspace)

    assert report.takes == 4
    assert _line(report.lines, "Mina", "Sora", IMAGES).face == 70.0
    assert consistency_report(workspace=elsewhere).takes == 1


def test_the_report_narrows_to_a_series_a_character_and_dates(workspace, studio):
    other = SceneFactory(episode=EpisodeFactory(series=SeriesFactory(workspace=workspace)))
    old = scored_take(other, studio["sora"], Seen(studio["mina"], (10, 10, 10), 0.0))
    Take.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=40))

    assert consistency_report(workspace=workspace).takes == 5
    in_series = consistency_report(
        workspace=workspace, filters=ReportFilters(series=studio["series"])
    )
    assert in_series.takes == 4
    joe_only = consistency_report(
        workspace=workspace, filters=ReportFilters(character=studio["joe"])
    )
    assert [line.character_name for line in joe_only.lines] == ["Joe"]
    assert joe_only.takes == 1
    recent = timezone.localdate() - datetime.timedelta(days=7)
    assert consistency_report(workspace=workspace, filters=ReportFilters(since=recent)).takes == 4
    assert consistency_report(workspace=workspace, filters=ReportFilters(until=recent)).takes == 1


def test_the_page_shows_the_table_the_chart_and_the_threshold(client, members, workspace, studio):
    client.force_login(members["viewer"])
    page = client.get(reverse("consistency_report", args=[workspace.slug])).content.decode()
    text = visible_text(page)

    assert "4 scored takes" in text
    assert "Drift threshold: 60" in text
    assert "Owners change it." in text
    assert page.count('class="chart score-chart"') == 1
    assert "Sora · Reference images" in page  # the chart's series
    assert "threshold 60" in page
    # Mina at Sora by reference images: 70 / 60 / 80, review 55, 66.7%, 50%, $0.30, 33.3%
    assert "Mina Sora Reference images 3 70 review 55 60 80 66.7% 50% 1 of 2 $0.30 33.3%" in text


def test_the_page_narrowed_by_htmx_answers_the_report_alone(client, members, workspace, studio):
    client.force_login(members["viewer"])
    url = reverse("consistency_report", args=[workspace.slug])
    response = client.get(url, {"character": studio["joe"].pk}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page
    assert page.startswith('\n<div id="report">') or '<div id="report">' in page[:40]
    assert "1 scored take matches these filters" in visible_text(page)
    assert f"report.csv?character={studio['joe'].pk}" in page


def test_the_filters_say_what_is_wrong_with_dates_that_cross(client, members, workspace, studio):
    client.force_login(members["viewer"])
    url = reverse("consistency_report", args=[workspace.slug])
    page = client.get(url, {"since": "2025-05-02", "until": "2025-05-01"}).content.decode()
    assert "The end comes before the start." in page
    assert "4 scored takes." in visible_text(page)  # an invalid form narrows nothing


def test_the_csv_has_the_numbers_of_the_page(client, members, workspace, studio):
    client.force_login(members["viewer"])
    response = client.get(reverse("consistency_report_csv", args=[workspace.slug]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))

    assert [(row["character"], row["provider_account"], row["method"]) for row in rows] == [
        ("Joe", "Sora", "Reference images"),
        ("Mina", "Kling", "Reference clip"),
        ("Mina", "Sora", "Reference images"),
        ("All characters", "Kling", "Reference clip"),
        ("All characters", "Sora", "Reference images"),
    ]
    mina = rows[2]
    assert {key: mina[key] for key in ("takes", "face", "clothing", "style", "reviewer_face")} == {
        "takes": "3",
        "face": "70",
        "clothing": "60",
        "style": "80",
        "reviewer_face": "55",
    }
    assert mina["reviewer_clothing"] == ""
    assert mina["persistence_percent"] == "66.7"
    assert (mina["reviewed"], mina["approved"], mina["approval_rate_percent"]) == ("2", "1", "50")
    assert (mina["cost"], mina["approved_seconds"]) == ("2.40", "8")
    assert mina["cost_per_approved_second"] == "0.30"
    assert (mina["flagged"], mina["flagged_percent"]) == ("1", "33.3")
    assert rows[4]["takes"] == "3"
    assert rows[4]["clothing"] == "55"


def test_the_csv_is_narrowed_as_the_page_is(client, members, workspace, studio):
    client.force_login(members["viewer"])
    url = reverse("consistency_report_csv", args=[workspace.slug])
    response = client.get(url, {"character": studio["joe"].pk})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["character"] for row in rows] == ["Joe", "All characters"]


def test_an_empty_report_says_takes_are_scored_when_they_finish(client, members, workspace):
    client.force_login(members["viewer"])
    text = visible_text(
        client.get(reverse("consistency_report", args=[workspace.slug])).content.decode()
    )
    assert "No take has been scored yet." in text
    assert "Takes are scored automatically when they finish" in text


def test_filters_that_match_nothing_say_so(client, members, workspace, studio):
    client.force_login(members["viewer"])
    url = reverse("consistency_report", args=[workspace.slug])
    text = visible_text(
        client.get(url, {"since": "2001-01-01", "until": "2001-01-02"}).content.decode()
    )
    assert "No scored take matches these filters." in text


# --- The threshold ---------------------------------------------------------------------------


def test_an_owner_sets_the_drift_threshold(client, members, workspace):
    client.force_login(members["owner"])
    response = client.post(
        reverse("drift_threshold", args=[workspace.slug]), {"drift_threshold": "72"}, follow=True
    )
    workspace.refresh_from_db()
    assert workspace.drift_threshold == 72
    text = visible_text(response.content.decode())
    assert "Drift threshold: 72" in text
    assert "Takes scoring below 72 on face, clothing or style are now flagged." in text


def test_a_threshold_above_100_is_refused_with_its_reason(client, members, workspace):
    client.force_login(members["owner"])
    response = client.post(
        reverse("drift_threshold", args=[workspace.slug]), {"drift_threshold": "101"}
    )
    assert response.status_code == 422
    assert "less than or equal to 100" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.drift_threshold == 60


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_only_owners_set_the_threshold(client, members, workspace, role):
    client.force_login(members[role])
    response = client.post(
        reverse("drift_threshold", args=[workspace.slug]), {"drift_threshold": "10"}
    )
    assert response.status_code == 403
    workspace.refresh_from_db()
    assert workspace.drift_threshold == 60


def test_owners_see_the_threshold_form_and_others_do_not(client, members, workspace):
    url = reverse("consistency_report", args=[workspace.slug])
    client.force_login(members["owner"])
    assert 'name="drift_threshold"' in client.get(url).content.decode()
    client.force_login(members["editor"])
    assert 'name="drift_threshold"' not in client.get(url).content.decode()


# --- Access and queries ------------------------------------------------------------------------


def test_an_outsider_gets_404_on_every_consistency_url(client, members, workspace, studio):
    take = studio["takes"][0]
    slug = workspace.slug
    client.force_login(members["outsider"])
    gets = [
        reverse("consistency_report", args=[slug]),
        reverse("consistency_report_csv", args=[slug]),
        reverse("take_consistency", args=[slug, take.pk]),
        reverse("take_consistency_frame", args=[slug, take.pk, 0]),
    ]
    posts = [
        reverse("drift_threshold", args=[slug]),
        reverse("take_score_again", args=[slug, take.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, {"drift_threshold": "10"}).status_code == 404, url


def test_an_anonymous_visitor_is_sent_to_log_in(client, workspace):
    response = client.get(reverse("consistency_report", args=[workspace.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def _report_queries(client, workspace: Workspace) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("consistency_report", args=[workspace.slug]))
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def _workspace_with_takes(owner, count: int) -> Workspace:
    from tests.factories import MembershipFactory

    workspace = MembershipFactory(user=owner, role="owner").workspace
    scene = SceneFactory(episode=EpisodeFactory(series=SeriesFactory(workspace=workspace)))
    accounts = [
        ProviderAccountFactory(workspace=workspace, name=name) for name in ("Sora", "Kling")
    ]
    cast = [CharacterFactory(workspace=workspace) for _ in range(3)]
    for n in range(count):
        scored_take(
            scene,
            accounts[n % 2],
            Seen(cast[n % 3], (50 + n, 60, 70), 0.7, method=(IMAGES, CLIP, NATIVE)[n % 3]),
            review=(APPROVED, REJECTED, PENDING)[n % 3],
        )
    return workspace


def test_the_report_costs_the_same_queries_for_3_takes_as_for_12(client, owner):
    client.force_login(owner)
    small = _report_queries(client, _workspace_with_takes(owner, 3))
    large = _report_queries(client, _workspace_with_takes(owner, 12))
    if len(small) != len(large):
        listing = "\n".join([f"3 takes ({len(small)}):", *small, "", f"12 ({len(large)}):", *large])
        pytest.fail(f"{len(small)} queries for 3 takes, {len(large)} for 12:\n{listing}")
    report_reads = [sql for sql in large if "studio_characterscore" in sql]
    assert len(report_reads) == 1, report_reads
