"""Secrets at rest: unreadable without the key, readable after a rotation."""

from __future__ import annotations

import pytest

from jobs.crypto import SecretUnreadable, decrypt_secret, encrypt_secret, rotate_secret


def test_a_secret_round_trips_and_is_not_stored_in_clear(settings):
    settings.ENCRYPTION_KEYS = ["k" * 48]
    token = encrypt_secret("sk-live-123")
    assert "sk-live-123" not in token
    assert decrypt_secret(token) == "sk-live-123"


def test_the_same_secret_encrypts_differently_each_time(settings):
    settings.ENCRYPTION_KEYS = ["k" * 48]
    assert encrypt_secret("sk") != encrypt_secret("sk")


def test_an_old_key_still_decrypts_after_a_new_one_is_put_first(settings):
    settings.ENCRYPTION_KEYS = ["old" * 16]
    token = encrypt_secret("sk-live-123")
    settings.ENCRYPTION_KEYS = ["new" * 16, "old" * 16]
    assert decrypt_secret(token) == "sk-live-123"
    rotated = rotate_secret(token)
    settings.ENCRYPTION_KEYS = ["new" * 16]
    assert decrypt_secret(rotated) == "sk-live-123"


def test_a_wrong_key_gives_a_plain_error(settings):
    settings.ENCRYPTION_KEYS = ["a" * 48]
    token = encrypt_secret("sk")
    settings.ENCRYPTION_KEYS = ["b" * 48]
    with pytest.raises(SecretUnreadable, match="ENCRYPTION_KEYS"):
        decrypt_secret(token)
