"""A real S3-compatible server for the storage tests: moto in server mode, in its own process,
on a free loopback port, reached over HTTP by boto3 exactly as an S3 bucket would be.

`S3Server.start()` runs `python -m moto.server`; `bucket(name)` creates a bucket;
`storage_settings(name)` is the STORAGES["default"] entry that points django-storages at it
(the same OPTIONS as studio/project/settings.py builds from AWS_* variables); `env(name)` is
the AWS_* environment a worker process needs to use the same bucket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx

from studio.project.redis_server import free_port

REGION = "us-east-1"
KEY_ID = "castboard-test"
SECRET = "castboard-test-secret"


class S3Server:
    """`python -m moto.server` on 127.0.0.1:<free port>, stopped on exit."""

    def __init__(self, *, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> S3Server:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=log,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        if self.log_path:
            log.close()  # the server holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} in {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self):
        """A boto3 S3 client on this server (what a test reads the bucket back with)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def bucket(self, name: str) -> str:
        """Create the bucket `name` (empty) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket, sorted."""
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def storage_settings(self, bucket: str) -> dict:
        """STORAGES["default"] for django-storages on this server, as settings.py builds it."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.endpoint_url,
                "region_name": REGION,
                "access_key": KEY_ID,
                "secret_key": SECRET,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 600,
                "file_overwrite": False,
                "signature_version": "s3v4",
            },
        }

    def env(self, bucket: str) -> dict[str, str]:
        """The AWS_* environment with which settings.py stores media in this bucket."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }
