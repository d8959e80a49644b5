"""The jobs list in the admin: scoped like the review list, with retry and cancel."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import JobKind, JobState
from studio.models import Take
from studio.project.celery import app as celery_app
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.support.pages import logged_in

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:jobs_job_changelist")


@pytest.fixture
def staff(members):
    """Every member (and the outsider) may open the admin; none of them is a superuser."""
    for user in members.values():
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return members


@pytest.fixture
def scene(workspace):
    return SceneFactory(
        episode=EpisodeFactory(series=SeriesFactory(workspace=workspace)), title="Gulls"
    )


@pytest.fixture
def account(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI main")


def _listed(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'class="field-pk"><a href="[^"]*">(\d+)</a>', html)}


def _act(client: Client, action: str, jobs):
    data = {"action": action, "index": 0, "_selected_action": [j.pk for j in jobs]}
    return client.post(JOBS, data, follow=True)


def test_staff_see_only_jobs_of_workspaces_they_review(client, staff, scene, account):
    ours = TakeFactory(scene=scene, account=account).job
    theirs_workspace = staff["outsider"].memberships.get().workspace
    theirs = JobFactory(provider_account=ProviderAccountFactory(workspace=theirs_workspace))

    assert _listed(logged_in(client, staff["reviewer"]).get(JOBS).content.decode()) == {ours.pk}
    outsider = logged_in(client, staff["outsider"])
    html = outsider.get(JOBS).content.decode()
    assert _listed(html) == {theirs.pk}
    response = outsider.get(reverse("admin:jobs_job_change", args=[ours.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    _act(outsider, "cancel_jobs", [ours])
    ours.refresh_from_db()
    assert ours.state == JobState.SUCCEEDED


def test_a_viewer_on_staff_has_no_jobs_list(client, staff, scene, account):
    TakeFactory(scene=scene, account=account)
    assert logged_in(client, staff["viewer"]).get(JOBS).status_code == 403


def test_a_superuser_sees_every_workspaces_jobs(admin_client, scene, account):
    ours = TakeFactory(scene=scene, account=account).job
    elsewhere = JobFactory()
    assert _listed(admin_client.get(JOBS).content.decode()) == {ours.pk, elsewhere.pk}


def test_the_job_page_links_to_its_takes_scene_in_the_studio(client, staff, scene, account):
    take = TakeFactory(scene=scene, account=account)
    page = (
        logged_in(client, staff["reviewer"])
        .get(reverse("admin:jobs_job_change", args=[take.job.pk]))
        .content.decode()
    )
    assert f'<a href="{scene.get_absolute_url()}">Take {take.pk} of Gulls</a>' in page
    assert reverse("admin:studio_take_change", args=[take.pk]) in page


def test_retrying_jobs_makes_new_takes_and_says_why_others_were_not(
    client, staff, workspace, scene, account
):
    cancelled = TakeFactory(scene=scene, account=account, state=JobState.CANCELLED)
    registration = JobFactory(
        provider_account=account, kind=JobKind.REGISTER_CHARACTER, state=JobState.FAILED
    )
    owner = staff["owner"]

    response = _act(logged_in(client, owner), "retry_jobs", [cancelled.job, registration])

    new = Take.objects.exclude(pk=cancelled.pk).get()
    assert new.scene == scene
    assert new.job.state == JobState.PENDING
    assert new.job.provider_account == account
    assert new.job.request == cancelled.job.request
    page = response.content.decode()
    assert f"Retried 1: new take(s) {new.pk}." in page
    assert "1 not retried: only a take&#x27;s job can be retried here." in page


def test_cancelling_a_waiting_job_stops_it(client, staff, scene, account):
    pending = TakeFactory(scene=scene, account=account, state=JobState.PENDING).job

    response = _act(logged_in(client, staff["editor"]), "cancel_jobs", [pending])

    pending.refresh_from_db()
    assert pending.state == JobState.CANCELLED
    assert "1 job(s) cancelled." in response.content.decode()


def test_a_reviewer_cannot_cancel_or_retry_jobs(client, staff, scene, account):
    pending = TakeFactory(scene=scene, account=account, state=JobState.PENDING).job
    failed = TakeFactory(scene=scene, account=account, state=JobState.FAILED).job
    reviewer = logged_in(client, staff["reviewer"])

    html = reviewer.get(JOBS).content.decode()
    assert 'value="cancel_jobs"' not in html
    assert 'value="retry_jobs"' not in html
    _act(reviewer, "cancel_jobs", [pending])
    _act(reviewer, "retry_jobs", [failed])

    pending.refresh_from_db()
    assert pending.state == JobState.PENDING
    assert Take.objects.count() == 2


def test_asking_for_news_polls_only_the_unfinished_jobs(
    client, staff, scene, account, monkeypatch, django_capture_on_commit_callbacks
):
    running = TakeFactory(scene=scene, account=account, state=JobState.RUNNING).job
    finished = TakeFactory(scene=scene, account=account).job
    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args, kwargs, **options: sent.append((name, args))
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = _act(logged_in(client, staff["editor"]), "poll_now", [running, finished])

    assert sent == [("jobs.tasks.poll_job", (running.pk, True))]
    assert "1 job(s) will be refreshed." in response.content.decode()
