"""Short-lived public URLs to stored files, for providers that fetch inputs by URL."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse

SALT = "castboard.jobs.public-file"


def public_file_url(name: str) -> str:
    """A URL a provider can fetch `name` from for JOBS_PUBLIC_URL_SECONDS, without a login."""
    try:
        default_storage.path(name)
    except NotImplementedError:
        return default_storage.url(name)  # S3: a presigned URL
    token = signing.dumps(name, salt=SALT, compress=True)
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{reverse('public_file', args=[token])}"


def name_from_token(token: str) -> str:
    """The storage name a token grants, or BadSignature / SignatureExpired."""
    return signing.loads(token, salt=SALT, max_age=settings.JOBS_PUBLIC_URL_SECONDS)
