"""Encryption of secrets at rest (provider API keys), with key rotation.

Each entry of settings.ENCRYPTION_KEYS is any long random string; a Fernet key is
derived from it with HKDF. The first key encrypts; every key decrypts, so a new
key can be put first and old ciphertexts re-encrypted at leisure.
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"castboard secrets at rest"
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def encrypt_secret(plaintext: str) -> str:
    return _fernet(tuple(settings.ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(tuple(settings.ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: was ENCRYPTION_KEYS changed without "
            "keeping the old key?"
        ) from None


def rotate_secret(token: str) -> str:
    """Re-encrypt a stored secret with the current first key."""
    return _fernet(tuple(settings.ENCRYPTION_KEYS)).rotate(token.encode()).decode()
