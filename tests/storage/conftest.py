"""Media on a real S3-compatible server: one moto server for the session, a new bucket for
each test, and the default storage pointed at it (over HTTP, as production would be)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from tests.support.s3 import S3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """One moto server for every storage test (it starts in about a second, once)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with S3Server(log_path=log) as server:
        yield server


@dataclass
class Bucket:
    """The test's bucket on the session's server."""

    server: S3Server
    name: str

    def names(self) -> list[str]:
        return self.server.keys(self.name)

    def read(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def size(self, key: str) -> int:
        return self.server.client().head_object(Bucket=self.name, Key=key)["ContentLength"]


@pytest.fixture
def s3(s3_server, settings, _media_in_tmp) -> Bucket:
    """STORAGES["default"] on a fresh bucket, replacing the temporary folder of conftest.

    Changing STORAGES resets Django's storage handler and `default_storage` (a lazy object
    that every FileField without its own storage reads through), so model fields bound at
    import use the bucket from here on; the assertion says so if that ever stops being true.
    """
    name = s3_server.bucket(f"castboard-{uuid.uuid4().hex[:16]}")
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_settings(name)}
    assert default_storage.bucket_name == name
    return Bucket(server=s3_server, name=name)


@dataclass
class Folder:
    """The test's local media folder (conftest's temporary FileSystemStorage), read like a
    bucket, so one test can say what is stored on either backend."""

    root: Path

    def names(self) -> list[str]:
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file()
        )


@pytest.fixture(params=["local", "s3"])
def media(request, settings, _media_in_tmp) -> Folder | Bucket:
    """The test runs once on local storage and once on the bucket."""
    if request.param == "s3":
        return request.getfixturevalue("s3")
    return Folder(Path(settings.STORAGES["default"]["OPTIONS"]["location"]))
