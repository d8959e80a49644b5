"""The character library over the REST API: characters, references, versions.

Uploads are real files (tests.samples); imports are real HTTP from a loopback server,
which only the tests that need a download allow (REFERENCE_IMPORT_ALLOWED_NETWORKS).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from characters import services
from characters.models import Character, CharacterShare, ReferenceAsset
from jobs.models import JobState
from studio.models import Membership, Role
from studio.services import series_pin_set
from tests.characters import webserver
from tests.characters.webserver import WebServer
from tests.factories import CharacterFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.samples import clip_bytes, image_bytes
from tests.support.api import Api, refused_fields, walk

pytestmark = pytest.mark.django_db

PNG = image_bytes("PNG", size=(64, 48))


def url(path: str = "") -> str:
    return f"/api/v1/characters{path}"


def png(name: str = "front.png", body: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, "image/png")


@pytest.fixture
def elsewhere(members):
    """The outsider's workspace."""
    return Membership.objects.get(user=members["outsider"]).workspace


@pytest.fixture
def mina(workspace):
    return services.character_create(
        workspace=workspace, name="Mina Park", handle="mina", description="Green coat."
    )


@pytest.fixture
def web() -> Iterator[WebServer]:
    with webserver.serving("127.0.0.1") as server:
        yield server


@pytest.fixture
def loopback_allowed(settings) -> None:
    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def share(character: Character, workspace, status=CharacterShare.Status.ACCEPTED):
    return CharacterShare.objects.create(
        character=character, workspace=workspace, offered_slug=workspace.slug, status=status
    )


# --- Characters -------------------------------------------------------------------------------


def test_an_editor_adds_a_character_and_reads_it_back(api, workspace):
    made = api.post(url(), {"name": "Mina Park", "handle": "Mina", "description": "Green coat."})

    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["handle"], body["version"], body["shared"]) == (
        "Mina Park",
        "mina",
        1,
        False,
    )
    assert body["references"] == []
    assert body["owner_workspace"] == workspace.slug
    read = api.get(url(f"/{body['id']}")).json()
    assert read == body
    assert Character.objects.get(pk=body["id"]).workspace == workspace


def test_a_bad_or_taken_handle_is_a_422_naming_the_handle(api, mina):
    assert refused_fields(api.post(url(), {"name": "Mina", "handle": "mina park"})) == ["handle"]
    taken = api.post(url(), {"name": "Another", "handle": "MINA"})
    assert refused_fields(taken) == ["handle"]
    assert "@mina is already used" in taken.json()["detail"]
    assert refused_fields(api.post(url(), {"handle": "nina"})) == ["name"]
    assert Character.objects.count() == 1


def test_the_library_lists_own_and_accepted_shared_characters(api, workspace, elsewhere):
    CharacterFactory(workspace=workspace, name="Mina Park", handle="mina")
    CharacterFactory(workspace=workspace, name="Ilse", handle="ilse")
    share(CharacterFactory(workspace=elsewhere, name="Keeper", handle="keeper"), workspace)
    share(
        CharacterFactory(workspace=elsewhere, name="Offered", handle="offered"),
        workspace,
        status=CharacterShare.Status.OFFERED,
    )
    CharacterFactory(workspace=elsewhere, name="Private", handle="private")

    listed = api.get(url()).json()

    assert [(c["handle"], c["shared"]) for c in listed["items"]] == [
        ("ilse", False),
        ("keeper", True),
        ("mina", False),
    ]
    assert listed["next_cursor"] is None
    shared = api.get(url(), {"shared": "true"}).json()["items"]
    assert [(c["handle"], c["owner_workspace"]) for c in shared] == [("keeper", elsewhere.slug)]
    own = api.get(url(), {"shared": "false"}).json()["items"]
    assert [c["handle"] for c in own] == ["ilse", "mina"]
    assert [c["handle"] for c in api.get(url(), {"q": "PARK"}).json()["items"]] == ["mina"]
    assert [c["handle"] for c in api.get(url(), {"q": "@kee"}).json()["items"]] == ["keeper"]


def test_text_with_a_nul_character_is_refused_as_input(api):
    for refused in (
        api.post(url(), {"name": "Mina\x00", "handle": "mina"}),
        api.get(url(), {"q": "mi\x00"}),
    ):
        assert refused.status_code == 422
        assert "NUL" in refused.json()["detail"]
    assert not Character.objects.exists()


def test_listing_the_library_costs_as_many_queries_for_many_characters(api, workspace, elsewhere):
    def queries_to_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(url()).status_code == 200
        return len(queries)

    CharacterFactory(workspace=workspace)
    share(CharacterFactory(workspace=elsewhere), workspace)
    queries_to_list()  # the token's first use is recorded once
    few = queries_to_list()
    for _ in range(5):
        CharacterFactory(workspace=workspace)
        share(CharacterFactory(workspace=elsewhere), workspace)

    assert queries_to_list() == few


def test_the_library_pages_through_every_character_exactly_once(api, workspace):
    made = {CharacterFactory(workspace=workspace, name=f"Twin {n % 3}").pk for n in range(8)}

    seen = [c["id"] for c in walk(api, url(), limit=3)]

    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))


def test_a_cursor_this_api_did_not_give_is_a_422(api):
    assert refused_fields(api.get(url(), {"cursor": "not-a-cursor"})) == ["cursor"]


def test_a_shared_character_can_be_read_but_not_changed(api, workspace, elsewhere):
    keeper = CharacterFactory(workspace=elsewhere, name="Keeper", handle="keeper")
    share(keeper, workspace)

    assert api.get(url(f"/{keeper.pk}")).json()["shared"] is True
    assert api.get(url(f"/{keeper.pk}/references")).status_code == 200
    assert api.get(url(f"/{keeper.pk}/versions")).status_code == 200
    assert api.patch(url(f"/{keeper.pk}"), {"name": "Mine now"}).status_code == 404
    assert api.delete(url(f"/{keeper.pk}")).status_code == 404
    upload = api.post(url(f"/{keeper.pk}/references"), data={"file": png()})
    assert upload.status_code == 404
    keeper.refresh_from_db()
    assert keeper.name == "Keeper"
    assert not keeper.assets.exists()


def test_another_workspaces_character_is_a_404_both_ways(api, api_as, mina, elsewhere):
    theirs = CharacterFactory(workspace=elsewhere)
    outsider = api_as("outsider")

    for client, character in ((api, theirs), (outsider, mina)):
        assert client.get(url(f"/{character.pk}")).status_code == 404
        assert client.get(url(f"/{character.pk}/references")).status_code == 404
        assert client.get(url(f"/{character.pk}/versions")).status_code == 404
        assert client.patch(url(f"/{character.pk}"), {"name": "x"}).status_code == 404
        assert client.delete(url(f"/{character.pk}")).status_code == 404
        assert (
            client.post(url(f"/{character.pk}/references"), data={"file": png()}).status_code == 404
        )
    assert [c["id"] for c in outsider.get(url()).json()["items"]] == [theirs.pk]
    missing = api.get(url("/999999"))
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/problem+json"
    assert Character.objects.filter(pk__in=[mina.pk, theirs.pk]).count() == 2


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_viewers_and_reviewers_read_but_may_not_write(api_as, role, mina):
    client = api_as(role)

    assert client.get(url()).status_code == 200
    assert client.get(url(f"/{mina.pk}")).status_code == 200
    for response in (
        client.post(url(), {"name": "Nina", "handle": "nina"}),
        client.patch(url(f"/{mina.pk}"), {"name": "Renamed"}),
        client.delete(url(f"/{mina.pk}")),
        client.post(url(f"/{mina.pk}/references"), data={"file": png()}),
        client.post(url(f"/{mina.pk}/references/import"), {"url": "https://example.com/a.png"}),
    ):
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == "application/problem+json"
    mina.refresh_from_db()
    assert (mina.name, mina.assets.count(), Character.objects.count()) == ("Mina Park", 0, 1)


def test_a_new_handle_is_written_into_the_scenes_that_mention_it(api, workspace, mina):
    scene = SceneFactory(episode__series__workspace=workspace, prompt="@mina looks out.")
    scene.mentions.set([mina])

    changed = api.patch(url(f"/{mina.pk}"), {"handle": "mina_p"})

    assert changed.status_code == 200, changed.content
    assert (changed.json()["handle"], changed.json()["scenes_rewritten"]) == ("mina_p", 1)
    assert changed.json()["name"] == "Mina Park"  # left out, so kept
    scene.refresh_from_db()
    assert scene.prompt == "@mina_p looks out."
    assert refused_fields(api.patch(url(f"/{mina.pk}"), {"name": None})) == ["name"]


def test_deleting_a_character_removes_it(api, mina):
    assert api.delete(url(f"/{mina.pk}")).status_code == 204
    assert api.get(url(f"/{mina.pk}")).status_code == 404
    assert not Character.objects.exists()


# --- References -------------------------------------------------------------------------------


def test_an_uploaded_image_becomes_a_reference_with_its_file(api, mina):
    made = api.post(url(f"/{mina.pk}/references"), data={"file": png(), "label": "front"})

    assert made.status_code == 201, made.content
    reference = made.json()
    assert {k: reference[k] for k in ("kind", "label", "content_type", "width", "height")} == {
        "kind": "image",
        "label": "front",
        "content_type": "image/png",
        "width": 64,
        "height": 48,
    }
    assert reference["duration_seconds"] is None
    detail = api.get(url(f"/{mina.pk}")).json()
    assert [r["id"] for r in detail["references"]] == [reference["id"]]
    assert Api(None).get(reference["file_url"]).status_code == 401
    stored = api.get(reference["file_url"])
    thumbnail = api.get(reference["thumbnail_url"])
    assert (stored.status_code, stored["Content-Type"]) == (200, "image/png")
    assert b"".join(stored.streaming_content) == PNG
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert b"".join(thumbnail.streaming_content).startswith(b"\xff\xd8")  # a JPEG
    for response in (stored, thumbnail):  # last: closing ends the request's connection
        response.close()


def test_an_uploaded_clip_says_how_long_it_is(api, mina):
    clip = SimpleUploadedFile("turn.mp4", clip_bytes(seconds=1.0), "video/mp4")

    made = api.post(url(f"/{mina.pk}/references"), data={"file": clip})

    assert made.status_code == 201, made.content
    assert made.json()["kind"] == "clip"
    assert made.json()["duration_seconds"] == pytest.approx(1.0, abs=0.2)


def test_an_upload_is_checked_by_its_content_not_its_name(api, mina):
    fake = png("front.png", b"<html>not a picture</html>")

    refused = api.post(url(f"/{mina.pk}/references"), data={"file": fake})

    assert refused_fields(refused) == ["file"]
    assert "front.png is neither an image" in refused.json()["detail"]
    assert not ReferenceAsset.objects.exists()


def test_an_upload_without_a_file_or_too_large_is_a_422_on_file(api, mina, settings):
    assert refused_fields(api.post(url(f"/{mina.pk}/references"), data={"label": "x"})) == ["file"]
    settings.REFERENCE_IMAGE_MAX_BYTES = settings.REFERENCE_CLIP_MAX_BYTES = 1024
    big = png("big.png", image_bytes("PNG", size=(400, 400), color=(1, 2, 3)) + b"\0" * 4096)

    refused = api.post(url(f"/{mina.pk}/references"), data={"file": big})

    assert refused_fields(refused) == ["file"]
    assert "big.png is larger than" in refused.json()["detail"]
    assert not ReferenceAsset.objects.exists()


def test_references_page_through_oldest_first_and_filter_by_kind(api, mina):
    images = [services.asset_add(character=mina, upload=png(f"{n}.png")).pk for n in range(3)]
    clip = services.asset_add(
        character=mina,
        upload=SimpleUploadedFile("turn.mp4", clip_bytes(seconds=1.0), "video/mp4"),
    )

    assert [r["id"] for r in walk(api, url(f"/{mina.pk}/references"), limit=2)] == [
        *images,
        clip.pk,
    ]
    clips = api.get(url(f"/{mina.pk}/references"), {"kind": "clip"}).json()["items"]
    assert [r["id"] for r in clips] == [clip.pk]


def test_a_removed_reference_leaves_the_character(api, mina, elsewhere):
    kept = services.asset_add(character=mina, upload=png("kept.png"))
    gone = services.asset_add(character=mina, upload=png("gone.png"))
    theirs = services.asset_add(character=CharacterFactory(workspace=elsewhere), upload=png())

    assert api.delete(url(f"/{mina.pk}/references/{gone.pk}")).status_code == 204

    listed = api.get(url(f"/{mina.pk}/references")).json()["items"]
    assert [r["id"] for r in listed] == [kept.pk]
    assert api.delete(url(f"/{mina.pk}/references/{gone.pk}")).status_code == 404
    assert api.delete(url(f"/{mina.pk}/references/{theirs.pk}")).status_code == 404
    assert api.get(url(f"/{mina.pk}/references/{theirs.pk}/file")).status_code == 404
    assert ReferenceAsset.objects.filter(pk=theirs.pk).exists()


@pytest.mark.usefixtures("loopback_allowed")
def test_a_reference_is_imported_from_a_web_address(api, mina, web):
    address = web.route("/mina/side.webp", webserver.file(image_bytes("WEBP"), "image/webp"))

    made = api.post(url(f"/{mina.pk}/references/import"), {"url": address, "label": "side"})

    assert made.status_code == 201, made.content
    assert (made.json()["original_name"], made.json()["content_type"]) == (
        "side.webp",
        "image/webp",
    )
    assert [asset.label for asset in mina.assets.all()] == ["side"]


def test_an_import_from_a_private_address_is_refused_without_fetching(api, mina, web):
    address = web.route("/front.png", webserver.file(PNG))

    refused = api.post(url(f"/{mina.pk}/references/import"), {"url": address})

    assert refused_fields(refused) == ["url"]
    assert "private" in refused.json()["detail"].lower()
    assert web.requests == []
    assert not ReferenceAsset.objects.exists()


@pytest.mark.usefixtures("loopback_allowed")
def test_an_imported_file_that_is_not_an_image_is_refused(api, mina, web):
    address = web.route("/front.png", webserver.file(b"<html>a login page</html>", "image/png"))

    refused = api.post(url(f"/{mina.pk}/references/import"), {"url": address})

    assert refused_fields(refused) == ["url"]
    assert not ReferenceAsset.objects.exists()


def test_imports_are_rate_limited_with_retry_after(api, mina, settings, web):
    settings.RATE_LIMIT_IMPORT = "2/60"
    settings.RATE_LIMIT_IMPORT_WORKSPACE = "10/60"
    address = web.route("/front.png", webserver.file(PNG))
    for _ in range(2):  # refused (a private address) but counted, as on the web
        assert api.post(url(f"/{mina.pk}/references/import"), {"url": address}).status_code == 422

    held = api.post(url(f"/{mina.pk}/references/import"), {"url": address})

    assert held.status_code == 429
    assert 1 <= int(held["Retry-After"]) <= 60
    assert held.json()["status"] == 429
    assert "Too many imports from web addresses" in held.json()["detail"]


def test_a_take_of_another_workspace_is_a_404_for_from_take(api, mina, elsewhere):
    theirs = TakeFactory(scene__episode__series__workspace=elsewhere)

    refused = api.post(
        url(f"/{mina.pk}/references/from-take"), {"take_id": theirs.pk, "start": 0, "end": 2}
    )

    assert refused.status_code == 404
    assert not ReferenceAsset.objects.exists()


def test_an_unfinished_take_cannot_become_references(api, workspace, mina):
    running = TakeFactory(scene__episode__series__workspace=workspace, state=JobState.RUNNING)
    path = url(f"/{mina.pk}/references/from-take")

    refused = api.post(path, {"take_id": running.pk, "start": 0.5, "end": 3})

    assert refused.status_code == 422
    assert "Only a finished take" in refused.json()["detail"]
    assert refused_fields(api.post(path, {"take_id": running.pk, "start": 3, "end": 1})) == ["end"]


@pytest.mark.redis
def test_a_span_of_a_finished_take_becomes_a_clip_and_stills(studio, wait_for_job):
    from studio.generation import take_create
    from tests.jobs.factories import studio_scene
    from tests.support.api import make_token

    take = take_create(
        scene=studio_scene(studio, "A stranger."), account=studio["accounts"]["openai"]
    )
    wait_for_job(take.job)
    stranger = services.character_create(
        workspace=studio["workspace"], name="Stranger", handle="stranger"
    )
    api = Api(make_token(studio["workspace"], role=Role.EDITOR))

    made = api.post(
        url(f"/{stranger.pk}/references/from-take"), {"take_id": take.pk, "start": 0.5, "end": 3}
    )

    assert made.status_code == 201, made.content
    body = made.json()
    assert body["clip"]["kind"] == "clip"
    assert body["clip"]["duration_seconds"] == pytest.approx(2.5, abs=0.3)
    assert [still["kind"] for still in body["stills"]] == ["image"] * 3
    assert body["registration_job_id"] is not None
    listed = api.get(url(f"/{stranger.pk}/references")).json()["items"]
    assert len(listed) == 4


# --- Versions ---------------------------------------------------------------------------------


def test_versions_list_newest_first_with_what_changed(api, workspace, mina):
    front = services.asset_add(character=mina, upload=png())
    series_pin_set(series=SeriesFactory(workspace=workspace), version=mina.versions.get())

    api.patch(url(f"/{mina.pk}"), {"description": "Red coat now."})

    versions = walk(api, url(f"/{mina.pk}/versions"), limit=1)
    assert [(v["number"], v["description"]) for v in versions] == [
        (2, "Red coat now."),
        (1, "Green coat."),
    ]
    assert versions[0]["change"] == "Description edited."
    assert versions[1]["reference_ids"] == versions[0]["reference_ids"] == [front.pk]
    assert api.get(url(f"/{mina.pk}")).json()["version"] == 2
