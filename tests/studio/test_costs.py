"""The Costs page: budgets owners change, spend by month, series and account, waste and
value, projections, and a page whose queries do not grow with the workspace."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs import ledger
from jobs.models import Budget, Job, JobKind, JobState, LedgerEntry, ProviderAccount
from studio.costs import budgets_of, projection
from studio.models import Role, Series, Take, Workspace, series_scope
from tests.factories import EpisodeFactory, MembershipFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.support.pages import visible_text

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


# --- Building spend ------------------------------------------------------------------


def _previous_period(period: str, months: int = 1) -> str:
    year, month = (int(part) for part in period.split("-"))
    month -= months
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}-{month:02d}"


def _spend(
    account: ProviderAccount,
    *,
    series: Series | None = None,
    state: str = JobState.SUCCEEDED,
    review: str = Take.Review.PENDING,
    charged: str | None = "0.80",
    reserved: str = "0.80",
    seconds: float = 8.0,
    period: str | None = None,
) -> Job:
    """A job (with a take of `series` when given) and its ledger entries, as the engine writes
    them: the estimate reserved; once it ended, released and `charged` (None: still running)."""
    period = period or ledger.current_period()
    job = JobFactory(
        provider_account=account,
        kind=JobKind.GENERATE if series else JobKind.REGISTER_CHARACTER,
        state=state if charged is not None else JobState.RUNNING,
        cost_estimate=Decimal(reserved),
        cost_actual=Decimal(charged) if charged and state == JobState.SUCCEEDED else None,
        result={"duration": seconds} if state == JobState.SUCCEEDED else {},
        budget_scope=series_scope(series.pk) if series else "",
    )
    if series is not None:
        scene = SceneFactory(episode=EpisodeFactory(series=series))
        Take.objects.create(scene=scene, job=job, review_state=review)
    common = {
        "workspace_id": account.workspace_id,
        "job": job,
        "provider_account": account,
        "period": period,
        "scope": job.budget_scope,
    }
    LedgerEntry.objects.create(kind=LedgerEntry.Kind.RESERVE, amount=Decimal(reserved), **common)
    if charged is not None:
        LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.RELEASE, amount=Decimal(reserved), **common
        )
        LedgerEntry.objects.create(kind=LedgerEntry.Kind.CHARGE, amount=Decimal(charged), **common)
    return job


@pytest.fixture
def account(workspace) -> ProviderAccount:
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


@pytest.fixture
def harbour(workspace) -> Series:
    return SeriesFactory(workspace=workspace, title="Harbour Lights")


def _costs(workspace: Workspace) -> str:
    return reverse("costs", args=[workspace.slug])


def _save(workspace: Workspace) -> str:
    return reverse("budget_save", args=[workspace.slug])


def _page(client, workspace: Workspace, **params) -> str:
    response = client.get(_costs(workspace), params)
    assert response.status_code == 200
    return response.content.decode()


# --- Who may see and change what --------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer"])
def test_every_member_may_see_the_costs_page(client, workspace, members, role):
    client.force_login(members[role])
    page = _page(client, workspace)
    assert "<h1>Costs</h1>" in page
    assert f'href="{_costs(workspace)}">Costs</a>' in page  # in the main navigation


def test_an_outsider_finds_no_costs_page_and_no_budgets(client, workspace, members):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    client.force_login(members["outsider"])
    assert client.get(_costs(workspace)).status_code == 404
    assert client.post(_save(workspace), {"scope": "workspace", "cap": "1"}).status_code == 404
    delete = reverse("budget_delete", args=[workspace.slug, budget.pk])
    assert client.post(delete).status_code == 404
    budget.refresh_from_db()
    assert budget.cap == Decimal("20.00")


def test_someone_logged_out_is_sent_to_log_in(client, workspace):
    response = client.get(_costs(workspace))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_only_owners_see_the_budget_forms(client, workspace, members, harbour):
    client.force_login(members["owner"])
    assert f'action="{_save(workspace)}"' in _page(client, workspace)
    client.force_login(members["editor"])
    page = _page(client, workspace)
    assert f'action="{_save(workspace)}"' not in page
    assert "Owners set the caps." in page


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_a_member_who_is_not_an_owner_may_not_change_budgets(
    client, workspace, members, harbour, role
):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    client.force_login(members[role])
    posts = [
        (_save(workspace), {"scope": "workspace", "cap": "500"}),
        (_save(workspace), {"scope": series_scope(harbour.pk), "cap": "5", "period": "total"}),
        (reverse("budget_delete", args=[workspace.slug, budget.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403
    assert list(Budget.objects.values_list("scope", "cap")) == [("workspace", Decimal("20.00"))]


def test_budget_pages_refuse_a_get(owner_client, workspace):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    assert owner_client.get(_save(workspace)).status_code == 405
    delete = reverse("budget_delete", args=[workspace.slug, budget.pk])
    assert owner_client.get(delete).status_code == 405


def test_another_workspaces_budget_is_not_found_through_ours(owner_client, workspace):
    theirs = Budget.objects.create(
        workspace=MembershipFactory(role=Role.OWNER).workspace, cap=Decimal("9")
    )
    response = owner_client.post(reverse("budget_delete", args=[workspace.slug, theirs.pk]))
    assert response.status_code == 404
    assert Budget.objects.filter(pk=theirs.pk).exists()


def test_another_workspaces_series_cannot_be_capped_through_ours(owner_client, workspace):
    theirs = SeriesFactory()
    data = {"scope": series_scope(theirs.pk), "cap": "5", "period": "total"}
    assert owner_client.post(_save(workspace), data).status_code == 404
    assert owner_client.post(_save(workspace), {"scope": "series:x", "cap": "5"}).status_code == 404
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("budget_save", {"scope": "workspace", "cap": "20"}),
        ("budget_delete", None),
    ],
    ids=["save", "delete"],
)
def test_budget_changes_need_a_csrf_token(owner, workspace, name, data):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("5"))
    url = reverse(name, args=[workspace.slug] + ([] if data else [budget.pk]))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(url, data or {}).status_code == 403
    assert list(Budget.objects.values_list("cap", flat=True)) == [Decimal("5.00")]
    # The control: the same post with the page's token gets through.
    strict.get(_costs(workspace))
    token = strict.cookies["csrftoken"].value
    assert strict.post(url, {**(data or {}), "csrfmiddlewaretoken": token}).status_code == 302


# --- Setting and removing caps -------------------------------------------------------------


def test_an_owner_sets_the_workspaces_monthly_cap(owner_client, workspace):
    response = owner_client.post(
        _save(workspace), {"scope": "workspace", "cap": "$1,200.50", "period": "total"}, follow=True
    )
    assert response.redirect_chain[-1][0] == _costs(workspace) + "#budget-workspace"
    text = visible_text(response.content.decode())
    assert "The workspace may now commit $1,200.50 a month." in text
    assert "$0.00 of $1,200.50 this month; $1,200.50 left." in text
    budget = Budget.objects.get(workspace=workspace)
    # The workspace's cap is monthly whatever was posted.
    assert (budget.scope, budget.cap, budget.period) == ("workspace", Decimal("1200.50"), "month")


def test_an_owner_caps_a_series_in_all_and_changes_it(owner_client, workspace, harbour):
    data = {"scope": series_scope(harbour.pk), "cap": "50", "period": "total"}
    response = owner_client.post(_save(workspace), data, follow=True)
    assert "“Harbour Lights” may now commit $50.00 in all." in response.content.decode()
    response = owner_client.post(_save(workspace), {**data, "cap": "75.5"}, follow=True)
    assert "$0.00 of $75.50 in all; $75.50 left." in visible_text(response.content.decode())
    budget = Budget.objects.get(workspace=workspace)
    assert (budget.scope, budget.label, budget.cap, budget.period) == (
        series_scope(harbour.pk),
        "Harbour Lights",
        Decimal("75.50"),
        "total",
    )


def test_an_owner_removes_a_series_cap(owner_client, workspace, harbour):
    budget = Budget.objects.create(
        workspace=workspace, scope=series_scope(harbour.pk), label="Harbour Lights", cap=5
    )
    response = owner_client.post(
        reverse("budget_delete", args=[workspace.slug, budget.pk]), follow=True
    )
    text = visible_text(response.content.decode())
    assert "“Harbour Lights” has no cap of its own any more" in text
    assert "Its takes count against the workspace's budget." in text
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("twenty", "Enter a number."),
        ("-5", "Ensure this value is greater than or equal to 0."),
        ("12.345", "Ensure that there are no more than 2 decimal places."),
        ("", "This field is required."),
    ],
)
def test_a_bad_cap_is_refused_and_keeps_what_was_typed(
    owner_client, workspace, harbour, typed, error
):
    Budget.objects.create(workspace=workspace, scope=series_scope(harbour.pk), cap=Decimal("5"))
    data = {"scope": series_scope(harbour.pk), "cap": typed, "period": "total"}
    response = owner_client.post(_save(workspace), data)
    assert response.status_code == 422
    page = response.content.decode()
    assert error in page
    field = re.search(rf'<input[^>]*id="id_budget-series-{harbour.pk}_cap"[^>]*>', page)
    assert field is not None
    assert (f'value="{typed}"' in field.group(0)) == bool(typed)
    assert '<option value="total" selected>' in page
    assert Budget.objects.get().cap == Decimal("5.00")  # unchanged
    # The other forms on the page are untouched: the workspace's still offers a new cap.
    assert page.count('role="alert"') == 1


# --- What the budgets show ---------------------------------------------------------------


def test_a_budget_shows_what_is_committed_against_its_cap_with_reservations_apart(
    client, workspace, members, account, harbour
):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    _spend(account, series=harbour, charged="1.20")
    _spend(account, series=harbour, charged="0.80")
    _spend(account, series=harbour, charged=None, reserved="1.20")  # still generating
    _spend(account, charged="0.00", state=JobState.FAILED)  # failed: released, not billed
    _spend(account, charged="5.00", period=_previous_period(ledger.current_period()))
    client.force_login(members["viewer"])
    text = visible_text(_page(client, workspace))
    assert "$3.20 of $20.00 this month; $16.80 left." in text
    assert "$2.00 charged · $1.20 reserved for takes in progress" in text
    # The same figure the ledger refuses takes by.
    assert ledger.committed(budget) == Decimal("3.20")


def test_budget_lines_count_what_the_ledger_counts(workspace, account, harbour):
    other = SeriesFactory(workspace=workspace, title="Night Ferry")
    workspace_budget = Budget.objects.create(workspace=workspace, cap=Decimal("20"))
    total = Budget.objects.create(
        workspace=workspace, scope=series_scope(harbour.pk), period="total", cap=Decimal("9")
    )
    monthly = Budget.objects.create(
        workspace=workspace, scope=series_scope(other.pk), period="month", cap=Decimal("9")
    )
    last_month = _previous_period(ledger.current_period())
    _spend(account, series=harbour, charged="1.10")
    _spend(account, series=harbour, charged="2.25", period=last_month)
    _spend(account, series=other, charged=None, reserved="0.40")
    _spend(account, series=other, charged="3.00", period=last_month)
    lines = {line.scope: line for line in [budgets_of(workspace=workspace).workspace]}
    lines |= {line.scope: line for line in budgets_of(workspace=workspace).series}
    for budget in (workspace_budget, total, monthly):
        assert lines[budget.scope].committed.total == ledger.committed(budget)
    assert lines[total.scope].committed.total == Decimal("3.35")  # both months
    assert lines[monthly.scope].committed.total == Decimal("0.40")  # this month only


def test_a_budget_past_its_cap_says_by_how_much(owner_client, workspace, account, harbour):
    _spend(account, series=harbour, charged="2.50")
    _spend(account, series=harbour, charged=None, reserved="0.70")
    data = {"scope": series_scope(harbour.pk), "cap": "2", "period": "month"}
    response = owner_client.post(_save(workspace), data, follow=True)
    page = response.content.decode()
    text = visible_text(page)
    assert "It has already committed $3.20, more than the cap" in text
    assert "$3.20 of $2.00 this month; $1.20 over the cap : new takes are refused." in text
    assert f'class="budget card over" id="budget-series-{harbour.pk}"' in page


def test_a_budget_left_behind_by_a_deleted_series_can_still_be_removed(owner_client, workspace):
    budget = Budget.objects.create(
        workspace=workspace, scope="series:9999", label="Old Pilot", cap=3
    )
    page = _page(owner_client, workspace)
    line = page.split('id="budget-series-9999"', 1)[1].split("</li>", 1)[0]
    assert "Old Pilot" in line
    assert "Remove the cap of Old Pilot?" in line
    assert 'name="cap"' not in line  # nothing left to cap
    owner_client.post(reverse("budget_delete", args=[workspace.slug, budget.pk]))
    assert not Budget.objects.exists()


# --- Spend ----------------------------------------------------------------------------


def test_a_workspace_that_spent_nothing_says_so(client, workspace, members, account, harbour):
    _spend(account, series=harbour, charged=None, reserved="0.80")  # only in progress
    client.force_login(members["viewer"])
    page = _page(client, workspace)
    text = visible_text(page)
    assert "Nothing has been spent yet." in text
    assert "$0.80 is reserved for takes in progress." in text
    assert "Waste and value" not in page
    assert "Spend by month" not in page


def test_spend_is_shown_by_month_by_series_and_by_account(
    client, workspace, members, account, harbour
):
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay")
    ferry = SeriesFactory(workspace=workspace, title="Night Ferry")
    this_month = ledger.current_period()
    _spend(account, series=harbour, charged="1.20")
    _spend(account, series=harbour, charged="0.85", period=_previous_period(this_month, 2))
    _spend(relay, series=ferry, charged="0.12")
    _spend(relay, charged="0.50")  # a character registration: no take
    _spend(account, charged="9.00", period=_previous_period(this_month, 12))  # 13 months ago
    client.force_login(members["viewer"])
    page = _page(client, workspace)
    text = visible_text(page)
    assert "What finished jobs were charged: $11.67 in all" in text
    months = re.findall(r'<tr><th scope="row">(\w+ \d{4})</th><td class="num">\$([\d.,]+)', page)
    assert len(months) == 12
    assert months[-1][1] == "1.82"  # this month
    assert months[-3][1] == "0.85"
    assert sum(Decimal(amount) for _, amount in months) == Decimal("2.67")  # not 13 months ago
    assert "Harbour Lights 2 $2.05" in text
    assert "Night Ferry 1 $0.12" in text
    assert "Characters and other 2 $9.50" in text
    assert "OpenAI 3 $11.05" in text
    assert "Relay 2 $0.62" in text


def test_the_charts_are_svg_with_a_title_and_a_description(client, workspace, members, account):
    _spend(account, charged="0.50")
    client.force_login(members["viewer"])
    page = _page(client, workspace)
    for key, title in [
        ("month-chart", "Spend by month, last 12 months"),
        ("series-chart", "Spend by series, all time"),
        ("account-chart", "Spend by provider account, all time"),
    ]:
        assert f'role="img" aria-labelledby="{key}-title {key}-desc"' in page
        assert f'<title id="{key}-title">{title}</title>' in page
        assert f'<desc id="{key}-desc">' in page
    assert "<script" not in page.split("<body", 1)[1]  # no charting library


def test_waste_and_value_split_take_spend_by_outcome(client, workspace, members, account, harbour):
    approved = Take.Review.APPROVED
    _spend(account, series=harbour, review=approved, charged="0.80", seconds=8.0)
    _spend(account, series=harbour, review=approved, charged="0.40", seconds=4.0)
    _spend(account, series=harbour, review=Take.Review.REJECTED, charged="1.20")
    _spend(account, series=harbour, charged="0.30")  # awaiting review
    _spend(account, series=harbour, state=JobState.FAILED, charged="0.00")
    _spend(account, charged="0.50")  # no take: not part of this
    client.force_login(members["reviewer"])
    text = visible_text(_page(client, workspace))
    assert "Failed or cancelled takes $0.00 1 take; failures are not billed" in text
    assert "Rejected takes $1.20 1 take" in text
    assert "Awaiting review $0.30 1 take" in text
    assert "Approved takes $1.20 2 takes, 12 s of video" in text
    assert "Cost per approved second $0.10" in text


def test_cost_per_approved_second_waits_for_approved_video(client, workspace, members, account):
    _spend(account, charged="0.50")
    client.force_login(members["viewer"])
    assert "Cost per approved second — no approved video yet" in visible_text(
        _page(client, workspace)
    )


# --- Projection -------------------------------------------------------------------------


@pytest.fixture
def priced(workspace):
    """An OpenAI account at $0.10 a second, a relay (10 or 15 s only), and a disabled one."""
    openai = ProviderAccountFactory(
        workspace=workspace, name="OpenAI", kind="openai", price_override=Decimal("0.10")
    )
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay", model="")
    ProviderAccountFactory(workspace=workspace, name="Old key", enabled=False)
    return {"openai": openai, "relay": relay}


def test_projection_multiplies_a_videos_price_by_the_month_and_the_year(workspace, priced):
    lines = projection(workspace=workspace, videos=20, seconds=8, size="720x1280")
    assert [line.account.name for line in lines] == ["OpenAI", "Relay"]
    openai, relay = lines
    assert (openai.per_video, openai.monthly, openai.yearly) == (
        Decimal("0.8000"),
        Decimal("16.0000"),
        Decimal("192.0000"),
    )
    assert relay.monthly is None
    assert relay.problem == "cannot make 8 s"


def test_the_projection_shows_each_account_what_it_would_cost(client, workspace, members, priced):
    client.force_login(members["viewer"])
    page = _page(client, workspace, videos="20", seconds="8", size="720x1280")
    text = visible_text(page)
    assert "20 videos a month, 8 s each, 720×1280" in text
    assert "OpenAI cheapest" in text
    assert "(or compatible gateway) · sora-2 $0.80 $16.00 $192.00" in text
    assert "Relay Sora relay cannot make 8 s" in text
    assert "Old key" not in text
    assert '<title id="projection-chart-title">A month of 20 videos of 8 s' in page
    # What was asked stays in the form.
    assert 'name="videos" value="20"' in page


def test_the_projection_names_what_an_account_cannot_make(client, workspace, members, priced):
    client.force_login(members["viewer"])
    text = visible_text(_page(client, workspace, videos="3", seconds="10", size="1024x1024"))
    assert "(or compatible gateway) · sora-2 cannot make 10 s at 1024×1024" in text
    assert "Relay Sora relay cannot make 1024×1024" in text


def test_the_projection_answers_an_htmx_request_with_its_own_part(
    client, workspace, members, priced
):
    client.force_login(members["viewer"])
    response = client.get(
        _costs(workspace), {"videos": "100", "seconds": "12", "size": "1280x720"}, headers=HTMX
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="projection">')
    assert "$1.20" in page  # a video
    assert "$120.00" in page  # a month
    assert "$1,440.00" in page  # a year
    assert "<h1>" not in page
    assert "HX-Request" in response["Vary"]


def test_going_back_to_a_projection_restores_the_whole_page(client, workspace, members, priced):
    client.force_login(members["viewer"])
    restore = {**HTMX, "HX-History-Restore-Request": "true"}
    response = client.get(_costs(workspace), {"videos": "5", "seconds": "8"}, headers=restore)
    assert "<h1>Costs</h1>" in response.content.decode()


def test_a_bad_projection_says_what_is_wrong(client, workspace, members, priced):
    client.force_login(members["viewer"])
    page = _page(client, workspace, videos="0", seconds="8", size="1280x720")
    assert "Ensure this value is greater than or equal to 1." in page
    assert "$16.00" not in page


# --- Queries ---------------------------------------------------------------------------


def _busy_workspace(owner, series_count: int) -> Workspace:
    """A workspace of `owner` with `series_count` capped series, each with takes in every
    state of review, plus character registrations."""
    workspace = MembershipFactory(user=owner, role=Role.OWNER).workspace
    openai = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay")
    Budget.objects.create(workspace=workspace, cap=Decimal("100"))
    last_month = _previous_period(ledger.current_period())
    for n in range(series_count):
        series = SeriesFactory(workspace=workspace)
        Budget.objects.create(
            workspace=workspace,
            scope=series_scope(series.pk),
            label=series.title,
            period="total" if n % 2 else "month",
            cap=Decimal("10"),
        )
        _spend(openai, series=series, review=Take.Review.APPROVED)
        _spend(relay, series=series, review=Take.Review.REJECTED, period=last_month)
        _spend(openai, series=series, state=JobState.FAILED, charged="0.00")
        _spend(openai, series=series, charged=None)
    _spend(relay, charged="0.30")
    return workspace


def _sql_of_page(client, workspace: Workspace) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(_costs(workspace))
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def test_the_costs_page_costs_the_same_queries_for_30_series_as_for_3(client, owner):
    small = _busy_workspace(owner, 3)
    large = _busy_workspace(owner, 30)
    client.force_login(owner)
    small_sql, large_sql = _sql_of_page(client, small), _sql_of_page(client, large)
    if len(small_sql) != len(large_sql):
        listing = "\n".join([f"3 series ({len(small_sql)}):", *small_sql, "", "30 series:"])
        pytest.fail(listing + "\n" + "\n".join(large_sql))
    page = client.get(_costs(large)).content.decode()
    assert page.count('class="budget card') == 31
    assert page.count('class="budget-form"') == 31
