"""Generate-all respects a provider account's concurrency limit: the provider never has more
of the account's videos in flight than the limit, and gets each scene's create once."""

from __future__ import annotations

import time

import httpx
import pytest
from django.urls import reverse

from jobs.models import JobState
from studio.models import GenerationBatch, Role, Take
from tests.factories import MembershipFactory, SceneFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SCENES = 4


@pytest.mark.parametrize("limit", [1, 2])
def test_generate_all_keeps_the_provider_within_the_accounts_concurrency_limit(
    client, studio, wait_for_job, limit
):
    emulator = studio["openai"]
    emulator.app.configure(latency_seconds=0.5)
    account = studio["accounts"]["openai"]
    account.concurrency_limit = limit
    account.save(update_fields=["concurrency_limit"])
    episode = studio["episode"]
    for number in range(SCENES):
        SceneFactory(
            episode=episode, prompt=f"Boats in the harbour, shot {number + 1}.", duration=4
        )
    editor = MembershipFactory(workspace=studio["workspace"], role=Role.EDITOR).user
    client.force_login(editor)

    url = reverse("episode_generate", args=[studio["workspace"].slug, episode.pk])
    response = client.post(url, {"account": account.pk})

    assert response.status_code == 302
    batch = _wait_for_batch(episode)  # the worker makes the takes
    assert (batch.made, batch.refused) == (SCENES, 0)
    takes = list(Take.objects.filter(scene__episode=episode).select_related("job"))
    assert len(takes) == SCENES
    jobs = [wait_for_job(take.job, timeout=60) for take in takes]
    assert [job.state for job in jobs] == [JobState.SUCCEEDED] * SCENES, [
        job.error_message for job in jobs
    ]
    state = httpx.get(f"{emulator.url}/_emulator/state").json()
    assert state["max_in_flight"] == limit
    assert state["in_flight"] == 0
    creates = [
        entry["job_id"]
        for entry in httpx.get(f"{emulator.url}/_emulator/log").json()["entries"]
        if entry["op"] == "create"
    ]
    assert sorted(creates) == sorted(job.provider_job_id for job in jobs)
    assert len(set(creates)) == SCENES


def _wait_for_batch(episode, timeout: float = 30.0) -> GenerationBatch:
    deadline = time.monotonic() + timeout
    while True:
        batch = GenerationBatch.objects.get(episode=episode)
        if batch.is_finished:
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.state}"
        time.sleep(0.1)
