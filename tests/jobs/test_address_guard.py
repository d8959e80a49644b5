"""Provider requests go to public addresses only: an account's base URL when it is saved and
at every connection, and the result links providers hand back; results are capped in size
and time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import pipeline
from jobs.models import ErrorCode, Job, JobState, LedgerEntry, ProviderAccount
from jobs.providers.base import ProviderError, ProviderJob
from jobs.providers.sora_relay import SoraRelayProvider
from jobs.services import job_create
from studio.models import Role
from tests.characters import webserver
from tests.factories import MembershipFactory
from tests.jobs.factories import ProviderAccountFactory, job_request

pytestmark = pytest.mark.django_db

PRIVATE_WORDS = "on a private network"

# Every form the probe used, and a few more that reach the same places.
REFUSED_BASE_URLS = [
    "http://127.0.0.1:8101/v1",
    "http://[::1]:8101/v1",
    "http://localhost:8101/v1",
    "http://api.localhost/v1",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1:6379/",
    "http://192.168.1.20/v1",
    "http://[::ffff:127.0.0.1]:8101/v1",
    "http://0.0.0.0:8101/v1",
]


class Listener:
    """A TCP port on a loopback address that counts the connections it is offered."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind((host, 0))
        self.socket.listen(8)
        self.socket.settimeout(0.1)
        self.host, self.port = self.socket.getsockname()
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    ear = Listener()
    yield ear
    ear.close()


@pytest.fixture
def no_private_networks(settings):
    """As in production: no private network is open to provider requests."""
    settings.PROVIDER_ALLOWED_NETWORKS = []
    return settings


@pytest.fixture
def new_owner(client):
    """Anyone may create a workspace and own it: the person the guard must hold back."""
    membership = MembershipFactory(role=Role.OWNER)
    client.force_login(membership.user)
    return membership


def _add_account(client, workspace, base_url: str):
    url = reverse("provider_accounts", args=[workspace.slug])
    return client.post(
        url,
        {
            "name": "My gateway",
            "kind": "openai",
            "base_url": base_url,
            "model": "sora-2",
            "enabled": "on",
            "concurrency_limit": "2",
            "api_key": "sk-live-abcdefgh",
        },
    )


# --- When an account is saved ---------------------------------------------------------------


@pytest.mark.parametrize("base_url", REFUSED_BASE_URLS)
def test_an_owner_cannot_point_an_account_at_a_private_address(
    client, new_owner, no_private_networks, base_url
):
    response = _add_account(client, new_owner.workspace, base_url)

    assert response.status_code == 200  # the form again, with its error
    assert not ProviderAccount.objects.filter(workspace=new_owner.workspace).exists()
    errors = response.context["form"].errors["base_url"]
    assert any(PRIVATE_WORDS in error for error in errors), errors
    assert "PROVIDER_ALLOWED_NETWORKS" in errors[0]
    # What was typed is kept (the key, being write-only, is not shown again).
    assert 'value="My gateway"' in response.content.decode()


def test_a_host_name_that_resolves_to_a_private_address_is_refused(
    monkeypatch, new_owner, client, no_private_networks
):
    # DNS is the one part outside our control here: the name answers with a private address.
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "gateway.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = _add_account(client, new_owner.workspace, "https://gateway.example/v1")

    assert not ProviderAccount.objects.filter(workspace=new_owner.workspace).exists()
    assert "gateway.example (10.1.2.3) is on a private network" in str(
        response.context["form"].errors["base_url"]
    )


def test_a_public_address_is_accepted(client, new_owner, no_private_networks):
    response = _add_account(client, new_owner.workspace, "https://93.184.215.14/v1")

    assert response.status_code == 302
    assert ProviderAccount.objects.get(workspace=new_owner.workspace).base_url == (
        "https://93.184.215.14/v1"
    )


def test_an_operator_can_open_a_private_network_for_a_self_hosted_gateway(
    client, new_owner, settings
):
    settings.PROVIDER_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert _add_account(client, new_owner.workspace, "http://10.0.0.1:8080/v1").status_code == 302
    assert _add_account(client, new_owner.workspace, "http://127.0.0.1:8080/v1").status_code == 200
    assert ProviderAccount.objects.filter(workspace=new_owner.workspace).count() == 1


def test_credentials_in_the_address_are_refused(client, new_owner, no_private_networks):
    response = _add_account(client, new_owner.workspace, "https://me:secret@93.184.215.14/v1")
    assert "Leave the user name and password out" in str(response.context["form"].errors)


def test_the_admin_applies_the_same_guard(admin_client, no_private_networks, workspace):
    response = admin_client.post(
        reverse("admin:jobs_provideraccount_add"),
        {
            "workspace": workspace.pk,
            "name": "Metadata",
            "kind": "openai",
            "base_url": "http://169.254.169.254/v1",
            "model": "",
            "enabled": "on",
            "concurrency_limit": "1",
        },
    )
    assert response.status_code == 200
    assert PRIVATE_WORDS in response.content.decode()
    assert not ProviderAccount.objects.filter(name="Metadata").exists()


# --- When a request goes out ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_account_saved_before_the_guard_sends_nothing_to_a_private_address(
    no_private_networks, listener, host
):
    # A row that never went through the form (saved before this check existed).
    account = ProviderAccountFactory(base_url=f"http://{host}:{listener.port}/v1")
    account.set_api_key("sk-live-should-never-leave")
    account.save()
    job = job_create(
        workspace=account.workspace,
        account=account,
        request=job_request("A harbour"),
    )

    pipeline.submit(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_code == ErrorCode.INVALID_REQUEST
    assert PRIVATE_WORDS in job.error_message
    assert listener.accepted == 0  # no connection, so no key and no answer to copy
    charge = LedgerEntry.objects.get(job=job, kind=LedgerEntry.Kind.CHARGE)
    assert charge.amount == 0


def test_a_result_link_to_a_private_address_is_never_fetched(settings):
    settings.PROVIDER_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the relay itself is allowed
    ear = Listener(host="127.0.0.2")  # ... but its link points elsewhere on the network
    try:
        account = ProviderAccountFactory(kind="sora_relay", base_url="http://127.0.0.1:9/v1")
        job = Job.objects.create(
            workspace=account.workspace,
            provider_account=account,
            request=job_request("x", seconds=10, size="720x1280"),
            state=JobState.DOWNLOADING,
            provider_job_id="task_1",
            result={"video_url": f"http://127.0.0.2:{ear.port}/files/task_1.mp4"},
            next_poll_at=timezone.now(),
        )

        pipeline.download(job.pk)

        job.refresh_from_db()
        assert job.state == JobState.FAILED
        assert job.error_code == ErrorCode.RESULT_INVALID
        assert "127.0.0.2 is on a private network" in job.error_message
        assert ear.accepted == 0
    finally:
        ear.close()


def test_the_adapter_refuses_a_private_result_link_by_itself(settings):
    settings.PROVIDER_ALLOWED_NETWORKS = []
    provider = SoraRelayProvider(base_url="https://relay.example/v1", api_key="k")
    job = ProviderJob(
        provider_job_id="t", status="succeeded", video_url="http://169.254.169.254/latest"
    )
    with pytest.raises(ProviderError) as refused:
        b"".join(provider.stream_result(job))
    assert refused.value.kind == "invalid"
    assert refused.value.code == "address_refused"


# --- Results: size and time -----------------------------------------------------------------


def _downloading_relay_job(video_url: str) -> Job:
    account = ProviderAccountFactory(kind="sora_relay", base_url="http://127.0.0.1:9/v1")
    return Job.objects.create(
        workspace=account.workspace,
        provider_account=account,
        request=job_request("x", seconds=10, size="720x1280"),
        state=JobState.DOWNLOADING,
        provider_job_id="task_1",
        result={"video_url": video_url, "completed_at": 1e12},
        next_poll_at=timezone.now(),
    )


def test_a_result_that_declares_more_than_the_cap_is_refused_before_it_is_read(settings):
    settings.JOBS_RESULT_MAX_BYTES = 50_000
    with webserver.serving() as server:
        url = server.route("/big.mp4", webserver.file(b"x" * 1000, "video/mp4", length=80_000))
        job = _downloading_relay_job(url)

        pipeline.download(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_code == ErrorCode.RESULT_INVALID
    assert "is 78.1 KB, more than the 48.8 KB Castboard keeps" in job.error_message
    assert not job.video


def test_a_result_that_keeps_coming_is_cut_off_at_the_cap(settings):
    settings.JOBS_RESULT_MAX_BYTES = 200_000
    with webserver.serving() as server:
        job = _downloading_relay_job(server.route("/endless.mp4", webserver.endless("video/mp4")))

        pipeline.download(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "Castboard keeps (JOBS_RESULT_MAX_BYTES)" in job.error_message
    assert not job.video


def test_a_download_that_trickles_past_its_time_is_stopped_and_tried_again(settings):
    settings.JOBS_DOWNLOAD_TIMEOUT_SECONDS = 1
    with webserver.serving() as server:
        job = _downloading_relay_job(server.route("/slow.mp4", webserver.trickle(every=0.05)))

        pipeline.download(job.pk)

        job.refresh_from_db()
        assert job.state == JobState.DOWNLOADING  # a passing failure: it goes again later
        assert job.attempts == 1
        assert "took longer than 1 s" in job.error_message

        settings.JOBS_MAX_DOWNLOAD_ATTEMPTS = 2
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
        pipeline.download(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "gave up after 2 tries" in job.error_message
