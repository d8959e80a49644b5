"""The ledger and budgets: reserve atomically, refuse with what is left, settle exactly once."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from jobs import ledger
from jobs.models import Budget, JobState, LedgerEntry
from jobs.services import job_create
from tests.jobs.factories import ProviderAccountFactory, job_request

EIGHTY_CENTS = Decimal("0.80")


def _create(account, amount=EIGHTY_CENTS, scope="series:1"):
    return job_create(
        workspace=account.workspace,
        account=account,
        request=job_request("A harbour", seconds=8),
        cost_estimate=amount,
        budget_scope=scope,
    )


def _finish(job, state, cost=None):
    job.move(state, cost_actual=cost)
    return ledger.settle(job)


@pytest.mark.django_db
def test_a_job_reserves_its_estimate_when_it_is_created():
    account = ProviderAccountFactory()
    job = _create(account)
    entry = job.ledger_entries.get()
    assert (entry.kind, entry.amount, entry.scope) == ("reserve", EIGHTY_CENTS, "series:1")
    assert ledger.reserved(job) == EIGHTY_CENTS


@pytest.mark.django_db
def test_a_request_over_the_workspace_budget_is_refused_with_what_is_left():
    account = ProviderAccountFactory()
    Budget.objects.create(workspace=account.workspace, cap=Decimal("2.00"), label="Harbour Films")
    _create(account)
    _create(account)
    with pytest.raises(ledger.OverBudget) as refused:
        _create(account)
    assert refused.value.message == (
        "This would cost about $0.80, but Harbour Films has $0.40 left this month of its "
        "$2.00 budget. An owner can raise the cap on the Costs page."
    )
    assert account.workspace.jobs.count() == 2  # the refused job was never created


@pytest.mark.django_db
def test_a_series_budget_counts_only_that_series():
    account = ProviderAccountFactory()
    Budget.objects.create(
        workspace=account.workspace, scope="series:1", cap=Decimal("1.00"), period="total"
    )
    _create(account, scope="series:1")
    _create(account, scope="series:2")  # another series: not counted
    with pytest.raises(ledger.OverBudget, match=r"has \$0.20 left of its \$1.00 budget"):
        _create(account, scope="series:1")


@pytest.mark.django_db
def test_a_finished_job_is_charged_what_it_cost_and_releases_its_reservation():
    account = ProviderAccountFactory()
    budget = Budget.objects.create(workspace=account.workspace, cap=Decimal("5.00"))
    job = _create(account)
    assert _finish(job, JobState.SUCCEEDED, Decimal("0.7600"))
    kinds = dict(job.ledger_entries.exclude(kind="reserve").values_list("kind", "amount"))
    assert kinds == {"release": EIGHTY_CENTS, "charge": Decimal("0.7600")}
    assert ledger.committed(budget) == Decimal("0.7600")


@pytest.mark.django_db
def test_a_failed_job_is_charged_nothing_and_frees_its_room():
    account = ProviderAccountFactory()
    budget = Budget.objects.create(workspace=account.workspace, cap=Decimal("0.80"))
    job = _create(account)
    assert _finish(job, JobState.FAILED)
    assert ledger.committed(budget) == Decimal("0")
    _create(account)  # the room is back


@pytest.mark.django_db
def test_settling_twice_charges_once():
    account = ProviderAccountFactory()
    job = _create(account)
    assert _finish(job, JobState.SUCCEEDED, EIGHTY_CENTS)
    assert not ledger.settle(job)
    assert job.ledger_entries.filter(kind="charge").count() == 1


@pytest.mark.django_db
def test_a_waiting_job_only_moves_to_a_dearer_fallback_if_the_budget_has_room():
    account = ProviderAccountFactory()
    other = ProviderAccountFactory(workspace=account.workspace)
    budget = Budget.objects.create(workspace=account.workspace, cap=Decimal("1.00"))
    job = _create(account)
    with pytest.raises(ledger.OverBudget):
        ledger.re_reserve(job=job, amount=Decimal("1.20"), account_id=other.pk, note="")
    assert ledger.reserved(job) == EIGHTY_CENTS  # unchanged
    ledger.re_reserve(job=job, amount=Decimal("0.95"), account_id=other.pk, note="")
    assert ledger.reserved(job) == Decimal("0.95")
    assert ledger.committed(budget) == Decimal("0.95")


@pytest.mark.django_db
def test_the_sweep_settles_a_job_that_ended_without_being_settled():
    from jobs import sweep

    account = ProviderAccountFactory()
    job = _create(account)
    job.move(JobState.SUCCEEDED, cost_actual=EIGHTY_CENTS)  # a crash before settling
    assert ledger.unsettled_jobs() == [job.pk]
    assert sweep.run()["settle"] == 1
    assert ledger.unsettled_jobs() == []
    assert job.ledger_entries.filter(kind=LedgerEntry.Kind.CHARGE).get().amount == EIGHTY_CENTS


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_requests_against_room_for_three_get_exactly_three_in():
    """The budget race, on whatever database the suite runs on (PostgreSQL in CI)."""
    account = ProviderAccountFactory()
    Budget.objects.create(workspace=account.workspace, cap=EIGHTY_CENTS * 3)
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def request() -> None:
        try:
            start.wait(timeout=10)
            _create(account)
            outcome = "created"
        except ledger.OverBudget:
            outcome = "refused"
        except Exception as error:  # reported by the assertion below
            outcome = f"error: {error}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created"] * 3 + ["refused"] * 17, (connection.vendor, outcomes)
    assert account.workspace.jobs.count() == 3
    assert LedgerEntry.objects.filter(kind="reserve").count() == 3
