"""Costs and budgets through the REST API: spend by month, series and account with what is
reserved, and caps that only owners set, change and remove (another workspace's is a 404)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs import ledger
from jobs.models import Budget, JobState
from studio.models import Take, series_scope
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.support.api import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai", model="sora-2")


@pytest.fixture
def harbour(workspace):
    return SeriesFactory(workspace=workspace, title="Harbour Lights")


@pytest.fixture
def scene(harbour):
    """4 s at 1280x720: $0.40 at OpenAI."""
    return SceneFactory(episode=EpisodeFactory(series=harbour), duration=4)


def _take(api: Api, scene) -> Take:
    response = api.post(f"/api/v1/scenes/{scene.pk}/takes", {})
    assert response.status_code == 201
    return Take.objects.get(pk=response.json()["id"])


def _succeed(take: Take, cost: str) -> None:
    """The take's job ends as the engine ends it: moved, then settled in the ledger."""
    job = take.job
    assert job.move(JobState.SUCCEEDED, cost_actual=Decimal(cost), progress=100)
    assert ledger.settle(job)


# --- Costs -------------------------------------------------------------------------------------


def test_costs_show_spend_by_month_series_and_account_and_what_is_reserved(
    api, api_as, scene, openai
):
    done = _take(api, scene)
    _take(api, scene)  # still under way: reserved, not spent
    _succeed(done, "0.35")

    response = api_as("viewer").get("/api/v1/costs")

    assert response.status_code == 200
    costs = response.json()
    assert costs["period"] == ledger.current_period()
    assert costs["committed"] == {"charged": "0.35", "reserved": "0.40", "total": "0.75"}
    assert costs["total_spent"] == "0.35"
    assert len(costs["months"]) == 12
    assert costs["months"][-1] == {
        "period": ledger.current_period(),
        "label": costs["months"][-1]["label"],
        "amount": "0.35",
    }
    assert {m["amount"] for m in costs["months"][:-1]} == {"0.00"}
    assert costs["by_series"] == [
        {"id": scene.episode.series_id, "name": "Harbour Lights", "amount": "0.35", "charges": 1}
    ]
    assert costs["by_account"] == [
        {"id": openai.pk, "name": "OpenAI", "amount": "0.35", "charges": 1}
    ]


def test_costs_are_the_tokens_own_workspaces(api, api_as, scene, openai):
    _succeed(_take(api, scene), "0.40")

    theirs = api_as("outsider").get("/api/v1/costs").json()

    assert theirs["total_spent"] == "0.00"
    assert theirs["by_series"] == theirs["by_account"] == []


# --- Budgets -----------------------------------------------------------------------------------


def test_an_owner_caps_the_workspace_per_month(api_as, workspace):
    response = api_as("owner").post("/api/v1/budgets", {"cap": "250.50"})

    assert response.status_code == 201
    budget = Budget.objects.get(workspace=workspace)
    assert response["Location"] == f"/api/v1/budgets/{budget.pk}"
    assert response.json() == {
        "id": budget.pk,
        "scope": "workspace",
        "series_id": None,
        "label": "This workspace",
        "period": "month",
        "cap": "250.50",
        "committed": {"charged": "0.00", "reserved": "0.00", "total": "0.00"},
        "left": "250.50",
        "is_over": False,
    }


def test_setting_a_cap_again_replaces_it(api_as, workspace):
    owner = api_as("owner")
    owner.post("/api/v1/budgets", {"cap": 20})

    response = owner.post("/api/v1/budgets", {"cap": 30})

    assert response.status_code == 200
    assert "Location" not in response
    assert list(Budget.objects.values_list("scope", "cap")) == [("workspace", Decimal("30.00"))]


def test_an_owner_caps_a_series_in_all(api_as, workspace, harbour):
    response = api_as("owner").post(
        "/api/v1/budgets", {"series_id": harbour.pk, "cap": "75", "period": "total"}
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["scope"], body["series_id"], body["label"], body["period"], body["cap"]) == (
        series_scope(harbour.pk),
        harbour.pk,
        "Harbour Lights",
        "total",
        "75.00",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cap": "20", "period": "total"}, "period"),  # the workspace's cap is monthly
        ({"cap": "-5"}, "cap"),
        ({"cap": "12.345"}, "cap"),
        ({"cap": "twenty"}, "cap"),
        ({}, "cap"),
        ({"cap": "5", "period": "week"}, "period"),
    ],
)
def test_a_cap_the_costs_page_would_refuse_is_a_422(api_as, workspace, body, field):
    response = api_as("owner").post("/api/v1/budgets", body)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not Budget.objects.exists()


def test_another_workspaces_series_cannot_be_capped(api_as, members):
    theirs = SeriesFactory(workspace=members["outsider"].memberships.get().workspace)

    response = api_as("owner").post("/api/v1/budgets", {"series_id": theirs.pk, "cap": "5"})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "series_id", "message": "No such series in this workspace."}
    ]
    assert not Budget.objects.exists()


def test_budgets_are_listed_with_what_each_has_committed(api, api_as, workspace, harbour, scene):
    Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    Budget.objects.create(workspace=workspace, scope=series_scope(harbour.pk), cap=Decimal("0.50"))
    ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    _take(api, scene)

    response = api_as("viewer").get("/api/v1/budgets")

    assert response.status_code == 200
    listed = {b["scope"]: b for b in response.json()["items"]}
    assert listed["workspace"]["committed"]["reserved"] == "0.40"
    assert listed["workspace"]["left"] == "19.60"
    series = listed[series_scope(harbour.pk)]
    assert (series["series_id"], series["left"], series["is_over"]) == (harbour.pk, "0.10", False)
    assert api_as("outsider").get("/api/v1/budgets").json()["items"] == []


def test_a_cap_set_through_the_api_stops_the_next_take_and_shows_it_is_over(
    api, api_as, workspace, scene, openai
):
    _take(api, scene)
    budget = api_as("owner").post("/api/v1/budgets", {"cap": "0.30"}).json()

    refused = api.post(f"/api/v1/scenes/{scene.pk}/takes", {})

    assert refused.status_code == 422
    assert "the workspace has $0.00 left this month" in refused.json()["detail"]
    assert (budget["is_over"], budget["left"]) == (True, "0.00")


def test_an_owner_changes_a_cap_and_keeps_what_was_not_sent(api_as, workspace, harbour):
    budget = Budget.objects.create(
        workspace=workspace, scope=series_scope(harbour.pk), cap=Decimal("5"), period="total"
    )

    response = api_as("owner").patch(f"/api/v1/budgets/{budget.pk}", {"cap": "8.25"})

    assert response.status_code == 200
    assert (response.json()["cap"], response.json()["period"]) == ("8.25", "total")
    budget.refresh_from_db()
    assert (budget.cap, budget.period, budget.label) == (
        Decimal("8.25"),
        "total",
        "Harbour Lights",
    )


def test_a_budget_left_by_a_deleted_series_can_only_be_removed(api_as, workspace, harbour):
    budget = Budget.objects.create(workspace=workspace, scope=series_scope(harbour.pk), cap=5)
    harbour.delete()
    owner = api_as("owner")

    refused = owner.patch(f"/api/v1/budgets/{budget.pk}", {"cap": "9"})

    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "The series this budget capped was deleted; remove the budget instead."
    )
    listed = owner.get("/api/v1/budgets").json()["items"]
    assert [(b["id"], b["series_id"]) for b in listed] == [(budget.pk, None)]
    assert owner.delete(f"/api/v1/budgets/{budget.pk}").status_code == 204
    assert not Budget.objects.exists()


def test_an_owner_removes_a_cap(api_as, workspace):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("5"))

    response = api_as("owner").delete(f"/api/v1/budgets/{budget.pk}")

    assert response.status_code == 204
    assert not Budget.objects.exists()


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_only_owners_set_change_or_remove_caps(api_as, workspace, role):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("5"))
    api = api_as(role)

    assert api.post("/api/v1/budgets", {"cap": "50"}).status_code == 403
    assert api.patch(f"/api/v1/budgets/{budget.pk}", {"cap": "50"}).status_code == 403
    assert api.delete(f"/api/v1/budgets/{budget.pk}").status_code == 403
    assert list(Budget.objects.values_list("cap", flat=True)) == [Decimal("5.00")]
    assert api.get("/api/v1/budgets").status_code == 200


def test_another_workspaces_budget_is_404(api_as, members):
    theirs = Budget.objects.create(
        workspace=members["outsider"].memberships.get().workspace, cap=Decimal("5")
    )
    owner = api_as("owner")

    assert owner.patch(f"/api/v1/budgets/{theirs.pk}", {"cap": "50"}).status_code == 404
    assert owner.delete(f"/api/v1/budgets/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.cap == Decimal("5.00")
