"""Importing a reference from a web address: which addresses, how big, how long, what content.

Every download here is real HTTP from a server thread on loopback. Loopback is private,
so the tests that need a download allow exactly 127.0.0.1/32 through
REFERENCE_IMPORT_ALLOWED_NETWORKS; the others run with the default (nothing allowed).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from characters import services
from characters.fetch import (
    PRIVATE,
    REDIRECTED_TO_PRIVATE,
    FetchRefused,
    address_allowed,
    is_public_address,
    reference_fetch,
)
from characters.models import Character, ReferenceAsset
from tests.characters import webserver
from tests.characters.webserver import WebServer
from tests.factories import CharacterFactory
from tests.samples import clip_bytes, image_bytes
from tests.support.library import create_url, upload_url
from tests.support.pages import messages_of

PNG = image_bytes("PNG", size=(64, 48))


@pytest.fixture
def web() -> Iterator[WebServer]:
    with webserver.serving("127.0.0.1") as server:
        yield server


@pytest.fixture
def loopback_allowed(settings) -> None:
    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def refusal(url: str) -> str:
    with pytest.raises(FetchRefused) as refused:
        reference_fetch(url).close()
    return refused.value.message


# --- The address checker -------------------------------------------------------------------

PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2002:808:808::1",  # 6to4 around a public IPv4 address
]
NOT_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback, end of the range"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local: cloud metadata"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not one to bind)
    ("100.64.0.1", "shared address space (carrier-grade NAT)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.10", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "IPv6 loopback"),
    ("::", "IPv6 unspecified"),
    ("fe80::1", "IPv6 link-local"),
    ("fc00::1", "IPv6 unique local"),
    ("fd12:3456::1", "IPv6 unique local"),
    ("ff02::1", "IPv6 multicast"),
    ("fec0::1", "IPv6 site-local"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::10.0.0.1", "IPv4-compatible private"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"),
    ("2002:a00:1::1", "6to4 around 10.0.0.1"),
    ("2002:7f00:1::1", "6to4 around 127.0.0.1"),
    ("2001:db8::1", "IPv6 documentation"),
]


@pytest.mark.parametrize("address", PUBLIC)
def test_it_calls_an_internet_address_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(("address", "kind"), NOT_PUBLIC, ids=[a for a, _ in NOT_PUBLIC])
def test_it_calls_a_non_internet_address_not_public(address, kind):
    assert not is_public_address(ipaddress.ip_address(address)), kind


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("127.0.0.1", True), ("127.0.0.2", False), ("::1", False), ("::ffff:127.0.0.1", False)],
)
def test_it_allows_exactly_the_networks_the_settings_open(address, allowed):
    networks = (ipaddress.ip_network("127.0.0.1/32"),)

    assert address_allowed(ipaddress.ip_address(address), networks) is allowed


def test_it_fails_loudly_on_an_allowed_network_that_is_not_one(settings):
    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = ["127.0.0.1/8"]  # host bits set: a typo?

    with pytest.raises(ImproperlyConfigured, match="REFERENCE_IMPORT_ALLOWED_NETWORKS"):
        reference_fetch("http://127.0.0.1/front.png")


# --- Addresses refused before any connection ------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/front.png",
        "http://localhost:{port}/front.png",
        "http://LOCALHOST./front.png",
        "http://media.localhost:{port}/front.png",
        "http://2130706433:{port}/front.png",  # 127.0.0.1 written as one decimal number
        "http://0x7f.1:{port}/front.png",  # and in hexadecimal, shortened
        "http://127.1:{port}/front.png",
        "http://0.0.0.0:{port}/front.png",
        "http://[::ffff:127.0.0.1]:{port}/front.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/front.png",
        "http://100.64.0.1/front.png",
        "http://[fe80::1]/front.png",
        "https://224.0.0.1/front.png",
    ],
)
def test_it_refuses_a_private_address_with_the_default_settings(web, url):
    web.route("/front.png", webserver.file(PNG))
    started = time.monotonic()

    message = refusal(url.format(port=web.port))

    assert message == PRIVATE
    assert web.requests == []
    assert time.monotonic() - started < 2  # refused, not tried until a timeout


def test_it_refuses_ipv6_loopback_with_the_default_settings():
    with webserver.serving("::1") as web:
        url = web.route("/front.png", webserver.file(PNG))

        message = refusal(url)

        assert message == PRIVATE
        assert web.requests == []


def test_it_refuses_localhost_even_where_loopback_is_allowed(web, loopback_allowed):
    web.route("/front.png", webserver.file(PNG))

    message = refusal(f"http://localhost:{web.port}/front.png")

    assert message == PRIVATE
    assert web.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/front.png", "Give an address that starts with https:// or http://."),
        ("file:///etc/passwd", "Give an address that starts with https:// or http://."),
        ("gopher://127.0.0.1:70/", "Give an address that starts with https:// or http://."),
        ("example.com/front.png", "Give an address that starts with https:// or http://."),
        ("http://0177.0.0.1/front.png", "“http://0177.0.0.1/front.png” is not a web address."),
        ("http:///front.png", "“http:///front.png” is not a web address."),
        (
            "http://admin:secret@127.0.0.1/front.png",
            "Leave the user name and password out of the address.",
        ),
    ],
)
def test_it_refuses_what_is_not_a_plain_web_address(url, message):
    assert refusal(url) == message


# --- Downloads from the allowed loopback server ---------------------------------------------


@pytest.mark.usefixtures("loopback_allowed")
def test_it_downloads_a_file_named_after_the_address(web):
    url = web.route("/refs/front%20view.png", webserver.file(PNG))

    upload = reference_fetch(url + "#ignored")

    with upload:
        assert upload.name == "front view.png"
        assert upload.size == len(PNG)
        assert upload.read() == PNG
    assert web.requests == [("/refs/front%20view.png", f"127.0.0.1:{web.port}")]


@pytest.mark.usefixtures("loopback_allowed")
def test_it_connects_to_the_checked_address_and_sends_the_name_as_host(web):
    web.route("/front.png", webserver.file(PNG))

    upload = reference_fetch(f"http://2130706433:{web.port}/front.png")

    upload.close()
    assert web.requests == [("/front.png", f"2130706433:{web.port}")]


@pytest.mark.usefixtures("loopback_allowed")
def test_it_follows_redirects_within_allowed_addresses(web):
    web.route("/latest", webserver.redirect("/v2/front.png", status=301))
    web.route("/v2/front.png", webserver.redirect(web.url("/files/front.png"), status=307))
    web.route("/files/front.png", webserver.file(PNG))

    upload = reference_fetch(web.url("/latest"))

    with upload:
        assert upload.read() == PNG
        assert upload.name == "front.png"
    assert [path for path, _host in web.requests] == [
        "/latest",
        "/v2/front.png",
        "/files/front.png",
    ]


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/front.png",
        "http://[::1]:{port}/front.png",
        "http://localhost:{port}/front.png",
    ],
)
def test_it_refuses_a_redirect_to_a_private_address_before_connecting(web, location):
    url = web.route("/front.png", webserver.redirect(location.format(port=web.port)))
    started = time.monotonic()

    message = refusal(url)

    assert message == REDIRECTED_TO_PRIVATE
    assert web.requests == [("/front.png", f"127.0.0.1:{web.port}")]
    assert time.monotonic() - started < 2


@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_a_redirect_to_another_scheme(web):
    url = web.route("/front.png", webserver.redirect("file:///etc/passwd"))

    assert refusal(url) == "Give an address that starts with https:// or http://."


@pytest.mark.usefixtures("loopback_allowed")
def test_it_gives_up_after_five_redirects(web):
    for hop in range(7):
        web.route(f"/hop/{hop}", webserver.redirect(f"/hop/{hop + 1}"))
    url = web.url("/hop/0")

    message = refusal(url)

    assert message == f"{url} redirects more than 5 times."
    assert len(web.requests) == 6  # the address and five redirects


@pytest.mark.usefixtures("loopback_allowed")
def test_it_names_the_answer_when_the_file_is_not_there(web):
    url = web.url("/missing.png")

    assert refusal(url) == f"127.0.0.1 answered 404 Not Found for {url}."


@pytest.mark.usefixtures("loopback_allowed")
def test_it_says_when_nothing_answers_at_the_address(web):
    with webserver.serving("127.0.0.1") as gone:
        url = gone.url("/front.png")

    assert refusal(url) == "Could not connect to 127.0.0.1."


@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_https_whose_certificate_nobody_vouches_for(tmp_path):
    with webserver.serving("127.0.0.1", tls_folder=tmp_path) as secure:
        url = secure.route("/front.png", webserver.file(PNG))

        message = refusal(url)

        assert url.startswith("https://")
        assert message == "127.0.0.1 did not prove who it is (its certificate is not valid)."
        assert secure.requests == []


# --- Size -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_a_declared_length_over_the_image_cap_without_reading(web, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 15 * 1024 * 1024
    url = web.route("/huge.png", webserver.file(PNG, length=16 * 1024 * 1024))

    message = refusal(url)

    assert message == f"The file at {url} is larger than 15.0 MB."


@pytest.mark.usefixtures("loopback_allowed")
def test_it_applies_the_clip_cap_to_a_declared_clip(web, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 64 * 1024
    small_clip = clip_bytes(seconds=0.5)
    assert 1024 < len(small_clip) < 64 * 1024
    url = web.route("/turn.mp4", webserver.file(small_clip, "video/mp4"))

    upload = reference_fetch(url)

    with upload:
        assert upload.read() == small_clip


@pytest.mark.usefixtures("loopback_allowed")
def test_it_stops_a_download_without_a_length_once_it_passes_the_cap(web, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 64 * 1024
    url = web.route("/endless.png", webserver.endless("image/png"))
    started = time.monotonic()

    message = refusal(url)

    assert message == f"The file at {url} is larger than 64.0 KB."
    assert time.monotonic() - started < 2


@pytest.mark.usefixtures("loopback_allowed")
def test_it_streams_against_the_larger_cap_when_the_type_is_not_declared(web, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 16 * 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 32 * 1024
    url = web.route("/endless", webserver.endless("application/octet-stream"))

    assert refusal(url) == f"The file at {url} is larger than 32.0 KB."


# --- Time -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(webserver.stall(after_headers=False), id="silent"),
        pytest.param(webserver.stall(after_headers=True), id="headers-then-silent"),
        pytest.param(webserver.trickle(every=0.2), id="one-byte-at-a-time"),
        # Silent just before the limit: a read that began in time must still end at it.
        pytest.param(webserver.trickle(every=0.1, then_stall_after=0.85), id="trickle-then-silent"),
    ],
)
def test_it_gives_up_when_the_whole_download_takes_longer_than_the_limit(web, settings, answer):
    settings.REFERENCE_IMPORT_TIMEOUT_SECONDS = 1
    url = web.route("/slow.png", answer)
    started = time.monotonic()

    message = refusal(url)

    elapsed = time.monotonic() - started
    assert message == "127.0.0.1 did not answer within 1 s."
    assert 0.9 < elapsed < 1.5


# --- Content, through the service -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_allowed")
def test_it_keeps_a_fetched_image_as_a_reference_like_an_upload(web):
    character = CharacterFactory()
    url = web.route("/mina/front.png", webserver.file(PNG, "application/octet-stream"))

    upload = services.asset_fetch(url=url)
    with upload:
        asset = services.asset_add(character=character, upload=upload)

    assert (asset.kind, asset.content_type, asset.width, asset.height) == (
        "image",
        "image/png",
        64,
        48,
    )
    assert asset.original_name == "front.png"
    assert asset.size_bytes == len(PNG)
    with asset.file.open("rb") as stored:
        assert stored.read() == PNG


@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_a_fetched_file_by_its_content_not_its_name_or_type(web):
    url = web.route("/front.png", webserver.file(b"<html>not a picture</html>", "image/png"))

    with pytest.raises(ValidationError) as refused:
        services.asset_fetch(url=url)

    assert refused.value.messages == [
        "front.png is neither an image (JPEG, PNG, WebP) nor a video clip (MP4, MOV, WebM)."
    ]


def test_it_turns_a_refused_address_into_a_validation_error():
    with pytest.raises(ValidationError) as refused:
        services.asset_fetch(url="http://169.254.169.254/latest/meta-data/")

    assert refused.value.messages == [PRIVATE]


# --- Through the pages ----------------------------------------------------------------------

pages = pytest.mark.django_db


def new_character(**fields) -> dict:
    return {"name": "Mina Park", "handle": "mina", "description": "Green coat."} | fields


@pages
@pytest.mark.usefixtures("loopback_allowed")
def test_it_creates_a_character_with_a_reference_imported_from_an_address(
    owner_client, workspace, owner, web
):
    url = web.route("/mina/front.png", webserver.file(PNG))

    response = owner_client.post(create_url(workspace), new_character(reference_url=url))

    character = Character.objects.get(workspace=workspace, handle="mina")
    assert response.status_code == 302
    assert response.url == character.get_absolute_url()
    [asset] = character.assets.all()
    assert (asset.original_name, asset.kind, asset.width, asset.created_by) == (
        "front.png",
        "image",
        64,
        owner,
    )


@pages
@pytest.mark.usefixtures("loopback_allowed")
def test_it_creates_a_character_from_uploads_and_an_address_together(owner_client, workspace, web):
    url = web.route("/turn.mp4", webserver.file(clip_bytes(seconds=1.0), "video/mp4"))
    upload = SimpleUploadedFile("front.png", PNG, "image/png")

    response = owner_client.post(
        create_url(workspace), new_character(references=[upload], reference_url=url)
    )

    assert response.status_code == 302
    character = Character.objects.get(workspace=workspace)
    assert sorted((a.original_name, a.kind) for a in character.assets.all()) == [
        ("front.png", "image"),
        ("turn.mp4", "clip"),
    ]


@pages
@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_an_imported_non_image_and_keeps_everything_typed(owner_client, workspace, web):
    url = web.route("/front.png", webserver.file(b"<html>a login page</html>", "image/png"))

    response = owner_client.post(create_url(workspace), new_character(reference_url=url))

    page = response.content.decode()
    assert response.status_code == 200
    assert "front.png is neither an image (JPEG, PNG, WebP) nor a video clip" in page
    assert 'value="Mina Park"' in page
    assert 'value="mina"' in page
    assert "Green coat." in page
    assert f'value="{url}"' in page
    assert not Character.objects.exists()
    assert not ReferenceAsset.objects.exists()
    assert not default_storage.exists(f"workspaces/{workspace.pk}")


@pages
def test_it_refuses_a_private_address_on_the_create_form_without_fetching(
    owner_client, workspace, web
):
    url = web.route("/front.png", webserver.file(PNG))

    response = owner_client.post(create_url(workspace), new_character(reference_url=url))

    page = response.content.decode()
    assert response.status_code == 200
    assert escape(PRIVATE) in page
    assert f'value="{url}"' in page
    assert web.requests == []
    assert not Character.objects.exists()


@pages
def test_it_does_not_fetch_while_another_field_is_wrong(
    owner_client, workspace, loopback_allowed, web
):
    url = web.route("/front.png", webserver.file(PNG))

    response = owner_client.post(
        create_url(workspace), new_character(handle="mina park", reference_url=url)
    )

    assert response.status_code == 200
    assert "A handle is 2 to 40 lowercase letters" in response.content.decode()
    assert web.requests == []


@pages
@pytest.mark.usefixtures("loopback_allowed")
def test_it_adds_a_reference_from_an_address_on_the_detail_page(owner_client, workspace, web):
    character = CharacterFactory(workspace=workspace)
    url = web.route("/side.webp", webserver.file(image_bytes("WEBP"), "image/webp"))

    response = owner_client.post(
        upload_url(character), {"reference_url": url, "label": "side"}, follow=True
    )

    assert response.redirect_chain[-1][0] == character.get_absolute_url()
    assert "1 reference added." in messages_of(response)
    [asset] = character.assets.all()
    assert (asset.original_name, asset.label, asset.content_type) == (
        "side.webp",
        "side",
        "image/webp",
    )


@pages
@pytest.mark.usefixtures("loopback_allowed")
def test_it_keeps_the_uploads_and_shows_a_refused_address_next_to_what_was_typed(
    owner_client, workspace, web, settings
):
    settings.REFERENCE_IMAGE_MAX_BYTES = 32 * 1024
    character = CharacterFactory(workspace=workspace)
    url = web.route("/poster.png", webserver.file(PNG, length=40 * 1024))
    upload = SimpleUploadedFile("front.png", PNG, "image/png")

    response = owner_client.post(
        upload_url(character), {"references": [upload], "reference_url": url, "label": "angles"}
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "1 reference added." in messages_of(response)
    assert f"The file at {url} is larger than 32.0 KB." in page
    assert f'value="{url}"' in page
    assert 'value="angles"' in page
    assert [asset.original_name for asset in character.assets.all()] == ["front.png"]
    assert f'id="asset-{character.assets.get().pk}"' in page


@pages
@pytest.mark.parametrize("role", ["reviewer", "viewer"])
@pytest.mark.usefixtures("loopback_allowed")
def test_it_refuses_an_import_to_members_who_may_not_edit_before_fetching(
    client, members, workspace, web, role
):
    character = CharacterFactory(workspace=workspace)
    url = web.route("/front.png", webserver.file(PNG))
    client.force_login(members[role])

    response = client.post(upload_url(character), {"reference_url": url})

    assert response.status_code == 403
    assert web.requests == []
    assert not character.assets.exists()


@pages
def test_it_answers_an_outsider_404_without_fetching(client, members, workspace, web):
    character = CharacterFactory(workspace=workspace)
    url = web.route("/front.png", webserver.file(PNG))
    client.force_login(members["outsider"])

    response = client.post(upload_url(character), {"reference_url": url})

    assert response.status_code == 404
    assert web.requests == []
