"""The Sora relay gateway: a relay script works against Castboard by changing its base URL.

Everything here is real HTTP against the live server: a script written the way a relay
user writes one (httpx and a Bearer key), and Castboard's own relay adapter pointed at
Castboard. Takes are made by the in-process worker at the emulators, as in production.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.models import Character, ReferenceAsset, subject_version
from characters.services import asset_add
from jobs import sweep
from jobs.models import Budget, Job, JobKind, ProviderAccount
from jobs.providers import provider_for
from jobs.providers.base import CharacterSource, GenerationRequest, ProviderError
from jobs.services import account_save
from jobs.signing import public_file_url
from studio.gateways.relay import handle_from
from studio.generation import take_create
from studio.models import RoutingPolicy, Scene, Take
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.samples import clip_bytes, image_bytes
from tests.support.api import make_token

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# The relay's field names (PROVIDERS.md section 2, jobs/emulators/sora_relay.py).
CHARACTER_FIELDS = {"character_id", "name", "description", "created_at"}
TASK_FIELDS = {"task_id", "status", "progress", "video_url", "error"}
ERROR_FIELDS = {"message", "code"}
STATUSES = {"queued", "processing", "completed", "failed"}


@pytest.fixture
def relay(studio, live_server, settings):
    """build_studio's workspace behind the gateway: its base URL, an editor token, and a
    clip served over loopback HTTP (a signed file link of the live server)."""
    # The guarded fetchers open no private network unless told, and never `localhost`:
    # the live server is named by its loopback address, which the tests allow.
    server = live_server.url.replace("://localhost:", "://127.0.0.1:")
    settings.PUBLIC_BASE_URL = server
    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    workspace = studio["workspace"]
    stored = default_storage.save("relay-tests/nico.mp4", ContentFile(clip_bytes(seconds=3.0)))
    return {
        **studio,
        "base": f"{server}/gateway/relay/v1",
        "token": make_token(workspace, name="relay script"),
        "clip_url": public_file_url(stored),
        "series": studio["episode"].series,
    }


@pytest.fixture
def script(relay) -> Iterator[Callable[[str | None], httpx.Client]]:
    """script(key): what a relay user writes, a client with the gateway as its base URL and
    `Authorization: Bearer <key>` (none for key None)."""
    clients: list[httpx.Client] = []

    def make(key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        clients.append(httpx.Client(base_url=relay["base"], headers=headers, timeout=60))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def wait_for_task(
    client: httpx.Client, task_id: str, until=("completed", "failed"), timeout: float = 60
) -> tuple[dict, list[str]]:
    """Poll the task as a relay script does (the sweep runs meanwhile, as beat would)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        answer = client.get(f"/sora/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == TASK_FIELDS
        seen.append(body["status"])
        if body["status"] in until:
            return body, seen
        assert time.monotonic() < deadline, f"task stuck in {body['status']}"
        sweep.run()
        time.sleep(0.2)


def relay_error(answer: httpx.Response, status: int, code: str) -> str:
    """The relay's error shape, `{"error": {"message", "code"}}`; its message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_FIELDS
    assert body["error"]["code"] == code
    return body["error"]["message"]


def made_nothing(before: dict) -> bool:
    return counts() == before


def counts() -> dict:
    return {"scenes": Scene.objects.count(), "takes": Take.objects.count()}


def character_of(public_id: str) -> Character:
    assert re.fullmatch(r"char_\d+", public_id)
    return Character.objects.get(pk=int(public_id.removeprefix("char_")))


def take_of(task_id: str) -> Take:
    assert re.fullmatch(r"task_\d+", task_id)
    return Take.objects.select_related("job", "scene").get(pk=int(task_id.removeprefix("task_")))


def relay_script(base: str, key: str, clip_url: str) -> dict:
    """A relay user's script, as such scripts are written (plain httpx, a Bearer key): make a
    character from a clip, list characters, generate with it, poll, download, extract.
    Returns every answer, so runs at the relay and at the gateway can be compared."""
    answers: dict = {"polls": []}
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        answers["character"] = (
            client.post(
                "/sora/characters",
                json={"video_url": clip_url, "name": "Nico", "description": "Keeps the lamp."},
            )
            .raise_for_status()
            .json()
        )
        answers["characters"] = client.get("/sora/characters").raise_for_status().json()
        mention = f"@{answers['character']['character_id']}"
        answers["task"] = task = (
            client.post(
                "/sora/generate",
                json={"prompt": f"{mention} waves from the lighthouse.", "duration": 5},
            )
            .raise_for_status()
            .json()
        )
        deadline = time.monotonic() + 60
        while not answers["polls"] or answers["polls"][-1]["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, answers["polls"][-1]
            sweep.run()  # beat's work, in production; the relay's emulator needs none
            time.sleep(0.2)
            answers["polls"].append(
                client.get(f"/sora/tasks/{task['task_id']}").raise_for_status().json()
            )
        answers["video"] = httpx.get(answers["polls"][-1]["video_url"], timeout=30)
        answers["extracted"] = (
            client.post(
                "/sora/characters/extract", json={"task_id": task["task_id"], "name": "Nico"}
            )
            .raise_for_status()
            .json()
        )
    return answers


def test_a_relay_script_runs_unchanged_against_the_gateway(relay):
    at_relay = relay_script(relay["relay"].api_url, "sk-test-1234", relay["clip_url"])
    here = relay_script(relay["base"], relay["token"], relay["clip_url"])

    # The relay's own answers, and ours: the same fields, the same words.
    for answers in (at_relay, here):
        assert set(answers["character"]) == CHARACTER_FIELDS
        assert set(answers["characters"]) == {"characters"}
        assert all(set(c) == CHARACTER_FIELDS for c in answers["characters"]["characters"])
        assert answers["characters"]["characters"][-1] == answers["character"]
        assert answers["task"]["status"] == "queued"
        assert set(answers["task"]) == {"task_id", "status"}
        assert all(set(poll) == TASK_FIELDS for poll in answers["polls"])
        assert {poll["status"] for poll in answers["polls"]} <= STATUSES
        done = answers["polls"][-1]
        assert (done["status"], done["progress"], done["error"]) == ("completed", 100, None)
        assert answers["video"].status_code == 200
        assert answers["video"].content[4:8] == b"ftyp"  # an MP4
        assert set(answers["extracted"]) == CHARACTER_FIELDS
        assert answers["extracted"]["name"] == "Nico"
    assert [type(v) for v in here["character"].values()] == [
        type(v) for v in at_relay["character"].values()
    ]

    # Ours are the library's: Nico, with the clip, in the token's workspace.
    nico = here["character"]
    assert (nico["name"], nico["description"]) == ("Nico", "Keeps the lamp.")
    assert abs(nico["created_at"] - time.time()) < 60
    character = character_of(nico["character_id"])
    assert (character.workspace, character.handle) == (relay["workspace"], "nico")
    (clip,) = character.assets.all()
    assert clip.kind == ReferenceAsset.Kind.CLIP
    listed = [c["character_id"] for c in here["characters"]["characters"]]
    assert listed == [f"char_{relay['mina'].pk}", nico["character_id"]]
    # The task is a take in the Inbox, naming Nico by handle.
    take = take_of(here["task"]["task_id"])
    assert take.scene.episode.inbox
    assert take.scene.prompt == "@nico waves from the lighthouse."
    assert list(take.scene.mentions.all()) == [character]
    with take.job.video.open("rb") as stored:
        assert here["video"].content == stored.read()
    # The extracted character is new (its handle made unique), from the take's span.
    from_take = character_of(here["extracted"]["character_id"])
    assert from_take.handle == "nico_2"
    kinds = sorted(from_take.assets.values_list("kind", flat=True))
    assert kinds == ["clip", "image", "image", "image"]  # its span and three stills


def test_the_video_link_is_signed_and_needs_no_key(relay, script):
    """`video_url` is a signed link that expires (JOBS_PUBLIC_URL_SECONDS): a bare GET (what
    the relay adapter sends) or one with the script's key opens it; a forged one opens nothing."""
    client = script(relay["token"])
    task = client.post("/sora/generate", json={"prompt": "Tide.", "duration": 5}).json()
    done, _ = wait_for_task(client, task["task_id"])
    link = done["video_url"]

    assert link.startswith(f"{relay['base'].removesuffix('/gateway/relay/v1')}/files/")
    assert httpx.get(link, timeout=30).content == client.get(link).content
    signed = link.rstrip("/").rsplit("/", 1)[1]
    forged = link.replace(signed, signed[:-3] + ("xyz" if signed[-3:] != "xyz" else "abc"))
    assert httpx.get(forged, timeout=30).status_code == 404


def test_castboard_s_own_relay_adapter_speaks_to_the_gateway(relay):
    """A second workspace's relay account whose base URL is this gateway: Castboard's
    adapter (jobs/providers/sora_relay.py) registers, generates, polls and downloads."""
    elsewhere = WorkspaceFactory()
    account = account_save(
        account=ProviderAccount(
            workspace=elsewhere,
            name="Castboard as a relay",
            kind="sora_relay",
            base_url=relay["base"],
        ),
        api_key=relay["token"],
    )
    provider = provider_for(account)
    since = int(time.time()) - 1
    try:
        registered = provider.register_character(
            CharacterSource(name="Oskar", description="Rows the ferry.", clip_url=relay["clip_url"])
        )
        oskar = character_of(registered.external_id)
        assert (oskar.workspace, oskar.name) == (relay["workspace"], "Oskar")
        found = provider.find_character(name="Oskar", since=since)
        assert found is not None
        assert found.external_id == registered.external_id

        job, payload = provider.submit(
            GenerationRequest(
                prompt=provider.render_mentions(
                    "{{character:1}} rows across the bay.", {"character:1": registered}
                ),
                seconds=5,
                size="720x1280",
            )
        )
        assert payload == {
            "prompt": f"@{registered.external_id} rows across the bay.",
            "duration": 5,
        }
        assert job.status == "queued"
        assert take_of(job.provider_job_id).scene.prompt == "@oskar rows across the bay."

        deadline = time.monotonic() + 60
        while job.status not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, f"stuck in {job.status}"
            sweep.run()
            time.sleep(0.2)
            job = provider.fetch(job.provider_job_id)
        assert job.status == "succeeded", job.error_message
        assert job.progress == 100
        video = b"".join(provider.stream_result(job))
        assert video[4:8] == b"ftyp"
        with take_of(job.provider_job_id).job.video.open("rb") as stored:
            assert video == stored.read()

        from_task = provider.register_character(
            CharacterSource(name="Oskar at sea", from_provider_job_id=job.provider_job_id)
        )
        assert character_of(from_task.external_id).name == "Oskar at sea"

        # Refusals arrive as the adapter's own kinds of error.
        with pytest.raises(ProviderError) as unknown:
            provider.fetch("task_999999")
        assert unknown.value.kind == "not_found"
        Budget.objects.create(workspace=relay["workspace"], cap=Decimal("0.05"))
        with pytest.raises(ProviderError) as broke:
            provider.submit(GenerationRequest(prompt="Gulls.", seconds=5, size="720x1280"))
        assert (broke.value.kind, broke.value.code) == ("quota", "quota_exceeded")
    finally:
        provider.close()


def test_a_take_at_another_castboard_is_made_through_the_gateway(relay, wait_for_job):
    """The whole pipeline of a second workspace, with the gateway as its relay: its
    character is registered there from its clip, its take made there and downloaded."""
    elsewhere = WorkspaceFactory()
    account = account_save(
        account=ProviderAccount(
            workspace=elsewhere,
            name="Castboard as a relay",
            kind="sora_relay",
            base_url=relay["base"],
        ),
        api_key=relay["token"],
    )
    ines = CharacterFactory(workspace=elsewhere, name="Ines", handle="ines")
    asset_add(
        character=ines,
        upload=SimpleUploadedFile("ines.mp4", clip_bytes(seconds=3.0), "video/mp4"),
    )
    scene = SceneFactory(
        episode=EpisodeFactory(series=SeriesFactory(workspace=elsewhere)),
        prompt="@ines mends a net.",
        duration=5,
        size="720x1280",
    )

    take = take_create(scene=scene, account=account)
    job = wait_for_job(take.job, timeout=90)

    assert job.state == "succeeded", job.error_message
    upstream = take_of(job.provider_job_id)  # the take the gateway made for it
    assert upstream.scene.episode.series.workspace == relay["workspace"]
    (registered,) = upstream.scene.mentions.all()
    assert (registered.workspace, registered.name) == (relay["workspace"], "Ines")
    with job.video.open("rb") as ours, upstream.job.video.open("rb") as theirs:
        assert ours.read() == theirs.read()


def test_a_library_character_is_meant_whatever_provider_the_series_routes_to(relay, script):
    """`@char_<id>` is the library character, not a relay id: pinned to OpenAI, the take
    still names it, and the character travels in the job's cast to OpenAI."""
    series, openai = relay["series"], relay["accounts"]["openai"]
    series.routing_policy, series.pinned_account = RoutingPolicy.PINNED, openai
    series.save()
    mina = relay["mina"]
    client = script(make_token(relay["workspace"], series=series))

    started = client.post(
        "/sora/generate", json={"prompt": f"@char_{mina.pk} walks the pier.", "duration": 4}
    )

    assert started.status_code == 200, started.text
    take = take_of(started.json()["task_id"])
    assert take.scene.episode.series == series
    assert take.scene.prompt == "@mina walks the pier."
    assert list(take.scene.mentions.all()) == [mina]
    assert take.job.provider_account == openai
    cast = take.job.job_request.request.cast
    assert [subject_version(member.subject)[0] for member in cast] == [mina.pk]
    done, _ = wait_for_task(client, started.json()["task_id"])
    assert done["status"] == "completed", done
    take.job.refresh_from_db()
    assert "Mina" in take.job.sent.prompt  # OpenAI names characters by name


def test_another_workspace_s_character_or_task_is_not_found(relay, script):
    client = script(relay["token"])
    outsider = WorkspaceFactory()
    theirs = CharacterFactory(workspace=outsider, name="Vera", handle="vera")
    their_client = script(make_token(outsider))
    mine = client.post("/sora/generate", json={"prompt": "Rain.", "duration": 5}).json()
    before = counts()

    unknown = client.post(
        "/sora/generate", json={"prompt": f"@char_{theirs.pk} in the rain.", "duration": 5}
    )

    assert f"@char_{theirs.pk}" in relay_error(unknown, 404, "character_not_found")
    assert made_nothing(before)
    for answer in (
        their_client.get(f"/sora/tasks/{mine['task_id']}"),
        their_client.post(
            "/sora/characters/extract", json={"task_id": mine["task_id"], "name": "Copy"}
        ),
    ):
        message = relay_error(answer, 404, "task_not_found")
        assert message == f"Task {mine['task_id']} not found."
    assert not Character.objects.filter(name="Copy").exists()
    listed = their_client.get("/sora/characters").json()["characters"]
    assert [c["character_id"] for c in listed] == [f"char_{theirs.pk}"]


def test_roles_tokens_and_private_addresses_are_refused_in_the_relay_s_shape(
    relay, settings, script
):
    viewer = script(make_token(relay["workspace"], role="viewer"))
    before, library = counts(), Character.objects.count()

    relay_error(
        viewer.post("/sora/generate", json={"prompt": "Fog.", "duration": 5}), 403, "forbidden"
    )
    relay_error(
        viewer.post("/sora/characters", json={"video_url": relay["clip_url"], "name": "Al"}),
        403,
        "forbidden",
    )
    assert viewer.get("/sora/characters").status_code == 200  # reading needs no more
    relay_error(script(None).get("/sora/characters"), 401, "unauthorized")
    relay_error(
        script("cb_made_up").post("/sora/generate", json={"prompt": "x"}),
        401,
        "unauthorized",
    )

    editor = script(relay["token"])
    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = []
    for url in (relay["clip_url"], "http://10.0.0.1/clip.mp4"):  # loopback, private
        message = relay_error(
            editor.post("/sora/characters", json={"video_url": url, "name": "Al"}),
            400,
            "invalid_video_url",
        )
        assert "private network" in message
    assert made_nothing(before)
    assert Character.objects.count() == library


def test_a_bad_body_is_refused_as_the_relay_refuses_it(relay, script):
    client = script(relay["token"])
    picture = default_storage.save("relay-tests/still.png", ContentFile(image_bytes()))
    before = counts()

    relay_error(client.post("/sora/generate", json={"duration": 5}), 400, "invalid_request")
    relay_error(
        client.post("/sora/generate", json={"prompt": "Dawn.", "duration": "5"}),
        400,
        "invalid_duration",
    )
    relay_error(client.post("/sora/characters", json={"name": "Al"}), 400, "invalid_request")
    # 7 s: neither the relay (5, 10, 15) nor OpenAI (4, 8, 12) makes it, and each says so.
    nobody = relay_error(
        client.post("/sora/generate", json={"prompt": "Dawn.", "duration": 7}),
        400,
        "invalid_request",
    )
    assert nobody.startswith("No provider can make this scene as it stands.")
    assert "this scene asks for 7" in nobody
    relay_error(
        client.post(
            "/sora/characters", content=b"[1]", headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid_request",
    )
    message = relay_error(
        client.post("/sora/characters", json={"video_url": public_file_url(picture), "name": "Al"}),
        400,
        "invalid_video",
    )
    assert "video clip" in message
    relay_error(client.get("/sora/generate"), 405, "method_not_allowed")
    relay_error(client.get("/sora/videos"), 404, "not_found")
    assert made_nothing(before)
    assert not Character.objects.filter(name="Al").exists()


def test_a_character_comes_only_from_a_completed_task(relay, script):
    client = script(relay["token"])
    started = client.post(
        "/sora/generate", json={"prompt": "Slow dawn. [[emulate:latency=30]]", "duration": 5}
    ).json()

    refused = client.post(
        "/sora/characters/extract", json={"task_id": started["task_id"], "name": "Dawn"}
    )

    message = relay_error(refused, 400, "task_not_completed")
    assert message.startswith(f"Task {started['task_id']} is ")
    assert not Character.objects.filter(name="Dawn").exists()
    status = client.get(f"/sora/tasks/{started['task_id']}").json()
    assert status["status"] in ("queued", "processing")
    assert (status["video_url"], status["error"]) == (None, None)


def test_a_failed_task_says_why_and_has_no_video(relay, script):
    client = script(relay["token"])
    started = client.post(
        "/sora/generate", json={"prompt": "Storm. [[emulate:fail]]", "duration": 5}
    ).json()

    done, _ = wait_for_task(client, started["task_id"])

    assert done["status"] == "failed"
    assert done["video_url"] is None
    assert done["error"]


def test_a_budget_without_room_is_the_relay_s_quota_refusal_and_makes_nothing(relay, script):
    Budget.objects.create(workspace=relay["workspace"], cap=Decimal("0.05"))
    client = script(relay["token"])
    before, jobs = counts(), Job.objects.filter(kind=JobKind.GENERATE).count()

    refused = client.post("/sora/generate", json={"prompt": "A calm sea.", "duration": 5})

    message = relay_error(refused, 429, "quota_exceeded")
    assert "$0.05 budget" in message
    assert made_nothing(before)
    assert Job.objects.filter(kind=JobKind.GENERATE).count() == jobs


def test_the_generation_rate_limit_counts_gateway_calls(relay, settings, script):
    settings.RATE_LIMIT_GENERATE = "1/60"
    client = script(relay["token"])
    assert (
        client.post("/sora/generate", json={"prompt": "Gulls.", "duration": 5}).status_code == 200
    )
    before = counts()

    refused = client.post("/sora/generate", json={"prompt": "More gulls.", "duration": 5})

    relay_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert made_nothing(before)


@pytest.mark.parametrize(
    ("name", "handle"),
    [
        ("Mina Park", "mina_park"),
        ("Zoë-Anne", "zoe_anne"),
        ("李", "character"),
        ("char 12", "char_12_character"),  # @char_12 in a prompt means character 12
        ("Char", "char_character"),  # and its second, char_2, would mean character 2
        ("x" * 90, "x" * 40),
    ],
)
def test_a_handle_is_made_from_the_name(name, handle):
    assert handle_from(name) == handle
