"""The Content-Security-Policy header: on every response, from settings, in every run mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, reverse

from jobs.models import JobState
from studio.project.csp import CSP, LazyNonce, build_policy, storage_origins
from tests.factories import TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ENFORCED = "Content-Security-Policy"
REPORT_ONLY = "Content-Security-Policy-Report-Only"
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# Views for what no studio page does: crash, refuse, set its own policy, use the nonce.
def _crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view broke")


def _refuse(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def _own_policy(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("<p>framed on purpose</p>")
    response[ENFORCED] = "frame-ancestors 'self'"
    return response


def _uses_the_nonce(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{request._csp_nonce}")


urlpatterns = [
    path("crash/", _crash),
    path("refuse/", _refuse),
    path("own-policy/", _own_policy),
    path("nonce/", _uses_the_nonce),
    path("no-nonce/", lambda request: HttpResponse("<p>plain</p>")),
    path("", include("studio.urls")),  # the studio's pages render their links
]


@pytest.fixture
def take(workspace):
    return TakeFactory(
        scene__episode__series__workspace=workspace, state=JobState.RUNNING, job__progress=40
    )


def test_the_settings_policy_is_the_strict_one():
    from django.conf import settings

    assert build_policy(settings.SECURE_CSP) == POLICY
    assert settings.SECURE_CSP_REPORT_ONLY == {}


def test_a_page_an_htmx_fragment_and_the_sign_in_carry_the_policy(client, owner, take):
    assert client.get(reverse("login"))[ENFORCED] == POLICY
    client.force_login(owner)
    slug = take.scene.episode.series.workspace.slug
    page = client.get(reverse("dashboard", args=[slug]))
    assert page.status_code == 200
    assert page[ENFORCED] == POLICY
    fragment = client.get(
        reverse("scene_status", args=[slug, take.scene_id]), headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200
    assert 'role="progressbar"' in fragment.content.decode()
    assert fragment[ENFORCED] == POLICY
    assert REPORT_ONLY not in fragment


def test_the_studios_error_pages_carry_the_policy(client, members, take):
    slug = take.scene.episode.series.workspace.slug
    client.force_login(members["outsider"])
    missing = client.get(reverse("dashboard", args=[slug]))
    assert missing.status_code == 404
    assert missing[ENFORCED] == POLICY
    client.force_login(members["viewer"])
    refused = client.post(reverse("scene_generate", args=[slug, take.scene_id]))
    assert refused.status_code == 403
    assert refused[ENFORCED] == POLICY


@pytest.mark.urls(__name__)
def test_the_server_error_page_carries_the_policy(client):
    client.raise_request_exception = False
    response = client.get("/crash/")
    assert response.status_code == 500
    assert response[ENFORCED] == POLICY


@pytest.mark.urls(__name__)
def test_with_debug_djangos_technical_page_is_sent_without_it_but_the_studios_are_not(
    client, settings
):
    settings.DEBUG = True
    client.raise_request_exception = False
    crash = client.get("/crash/")
    assert crash.status_code == 500
    assert b"the view broke" in crash.content  # the traceback page, with its inline styles
    assert ENFORCED not in crash
    refused = client.get("/refuse/")
    assert refused.status_code == 403  # the studio's 403.html, even with DEBUG
    assert refused[ENFORCED] == POLICY
    assert client.get("/no-nonce/")[ENFORCED] == POLICY


def test_the_admin_review_queue_carries_the_policy(client, owner, take):
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    response = client.get(reverse("admin:studio_take_changelist") + "?review=pending")
    assert response.status_code == 200
    assert response[ENFORCED] == POLICY


def test_a_webhook_still_answers_its_json(client, workspace):
    account = ProviderAccountFactory(workspace=workspace)
    response = client.post(
        reverse("provider_webhook", args=[account.webhook_token]),
        data=b'{"type": "video.completed"}',
        content_type="application/json",
    )
    assert response.status_code == 400  # unsigned
    assert response["Content-Type"] == "application/json"
    assert "message" in json.loads(response.content)


def test_a_video_still_streams_and_seeks(client, owner, take):
    take.job.state = JobState.SUCCEEDED
    take.job.save()
    video = clip_bytes(seconds=1.0)
    take.job.video.save("video.mp4", ContentFile(video))
    client.force_login(owner)
    url = reverse("take_media", args=[take.scene.episode.series.workspace.slug, take.pk, "video"])
    whole = client.get(url)
    assert whole["Content-Type"] == "video/mp4"
    assert b"".join(whole.streaming_content) == video
    span = client.get(url, headers={"Range": "bytes=10-19"})
    assert span.status_code == 206
    assert b"".join(span.streaming_content) == video[10:20]
    assert span[ENFORCED] == POLICY  # a file opened on its own runs nothing either


@pytest.mark.urls(__name__)
def test_a_view_that_sets_its_own_policy_keeps_it(client):
    assert client.get("/own-policy/")[ENFORCED] == "frame-ancestors 'self'"


@pytest.mark.urls(__name__)
def test_report_only_sends_the_same_policy_unenforced(client, settings):
    settings.SECURE_CSP_REPORT_ONLY, settings.SECURE_CSP = settings.SECURE_CSP, {}
    response = client.get("/no-nonce/")
    assert ENFORCED not in response
    assert response[REPORT_ONLY] == POLICY


@pytest.mark.urls(__name__)
def test_a_nonce_is_in_the_header_only_when_a_response_used_it(client, settings):
    settings.SECURE_CSP = {**settings.SECURE_CSP, "script-src": [CSP.SELF, CSP.NONCE]}
    used = client.get("/nonce/")
    nonce = used.content.decode()
    assert len(nonce) >= 16
    assert f"script-src 'self' 'nonce-{nonce}';" in used[ENFORCED]
    assert client.get("/nonce/").content.decode() != nonce  # one per request
    assert "script-src 'self';" in client.get("/no-nonce/")[ENFORCED]


def test_a_policy_renders_as_the_header_spells_it():
    nonce = LazyNonce()
    config = {
        "default-src": CSP.SELF,
        "img-src": {"blob:", CSP.SELF, "data:"},
        "script-src": [CSP.SELF, CSP.NONCE],
        "upgrade-insecure-requests": True,
        "sandbox": None,
        "frame-src": False,
    }
    assert build_policy(config, nonce) == (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
        "upgrade-insecure-requests"
    )
    assert f"script-src 'self' 'nonce-{nonce}';" in build_policy(config, nonce)


@pytest.mark.parametrize(
    ("bucket", "endpoint", "region", "origins"),
    [
        ("", "https://s3.example.com", "", []),
        (
            "castboard-media",
            "https://s3.example.com/",
            "",
            ["https://s3.example.com", "https://castboard-media.s3.example.com"],
        ),
        (
            "media",
            "http://127.0.0.1:9000",
            "",
            ["http://127.0.0.1:9000", "http://media.127.0.0.1:9000"],
        ),
        ("castboard-media", "", "", ["https://castboard-media.s3.amazonaws.com"]),
        (
            "castboard-media",
            "",
            "eu-west-1",
            [
                "https://castboard-media.s3.amazonaws.com",
                "https://castboard-media.s3.eu-west-1.amazonaws.com",
            ],
        ),
        (
            "media.castboard.example",
            "",
            "",
            ["https://media.castboard.example.s3.amazonaws.com", "https://s3.amazonaws.com"],
        ),
    ],
)
def test_the_buckets_origins_are_where_its_signed_urls_point(bucket, endpoint, region, origins):
    assert storage_origins(bucket=bucket, endpoint_url=endpoint, region=region) == origins


def _settings_policy(**env: str) -> dict:
    """SECURE_CSP and SECURE_CSP_REPORT_ONLY as the settings module computes them from env."""
    ours = ("DEBUG", "SECURE_", "AWS_", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    script = (
        "import json; from studio.project import settings as s; "
        "print(json.dumps({'enforced': s.SECURE_CSP, 'report_only': s.SECURE_CSP_REPORT_ONLY}))"
    )
    result = subprocess.run(  # noqa: S603 - our own settings module, fixed arguments
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_with_a_bucket_players_and_thumbnails_may_load_from_it():
    computed = _settings_policy(
        AWS_STORAGE_BUCKET_NAME="castboard-media", AWS_S3_ENDPOINT_URL="https://s3.example.com"
    )
    bucket = ["https://s3.example.com", "https://castboard-media.s3.example.com"]
    assert computed["enforced"]["img-src"] == ["'self'", "data:", "blob:", *bucket]
    assert computed["enforced"]["media-src"] == ["'self'", "blob:", *bucket]
    assert computed["enforced"]["script-src"] == ["'self'"]
    assert computed["enforced"]["connect-src"] == ["'self'"]


def test_the_report_only_switch_moves_the_whole_policy_and_debug_keeps_it_enforced():
    reported = _settings_policy(SECURE_CSP_REPORT_ONLY="true")
    assert reported["enforced"] == {}
    assert build_policy(reported["report_only"]) == POLICY
    debugging = _settings_policy(DEBUG="true")
    assert build_policy(debugging["enforced"]) == POLICY
    assert debugging["report_only"] == {}
