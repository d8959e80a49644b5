"""Typed environment helpers fail loudly and name the variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from studio.project.env import env_bool, env_float, env_int, env_list, env_secret


def test_booleans_accept_the_usual_spellings(monkeypatch):
    for raw, expected in [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)]:
        monkeypatch.setenv("FLAG", raw)
        assert env_bool("FLAG", not expected) is expected


def test_a_missing_value_takes_the_default(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", True) is True
    assert env_int("NUMBER", 7) == 7
    assert env_list("HOSTS", ["a"]) == ["a"]


def test_integers_are_checked_against_their_minimum(monkeypatch):
    monkeypatch.setenv("NUMBER", "-1")
    with pytest.raises(ImproperlyConfigured, match="NUMBER must be at least 0, got -1"):
        env_int("NUMBER", 1, minimum=0)
    monkeypatch.setenv("NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="NUMBER must be an integer, got 'ten'"):
        env_int("NUMBER", 1)


def test_numbers_take_fractions_and_refuse_what_is_not_a_finite_number(monkeypatch):
    monkeypatch.setenv("SECONDS", "0.25")
    assert env_float("SECONDS", 15.0, minimum=0.1) == 0.25
    monkeypatch.setenv("SECONDS", "0.01")
    with pytest.raises(ImproperlyConfigured, match=r"SECONDS must be at least 0\.1, got 0\.01"):
        env_float("SECONDS", 15.0, minimum=0.1)
    for raw in ("soon", "nan", "inf"):
        monkeypatch.setenv("SECONDS", raw)
        with pytest.raises(ImproperlyConfigured, match="SECONDS must be a"):
            env_float("SECONDS", 15.0)
    monkeypatch.delenv("SECONDS")
    assert env_float("SECONDS", 15.0) == 15.0


def test_lists_split_on_commas_and_drop_blanks(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example, ,b.example ")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_a_development_secret_is_generated_once_and_kept_private(monkeypatch, tmp_path):
    monkeypatch.delenv("SOME_SECRET", raising=False)
    path = tmp_path / "secret"
    first = env_secret("SOME_SECRET", fallback_file=path, generate=True)
    assert env_secret("SOME_SECRET", fallback_file=path, generate=True) == first
    assert len(first) >= 64
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("SOME_SECRET", "from-env")
    assert env_secret("SOME_SECRET", fallback_file=path, generate=True) == "from-env"


def test_a_missing_secret_is_left_empty_where_none_may_be_generated(monkeypatch, tmp_path):
    monkeypatch.delenv("SOME_SECRET", raising=False)
    path = tmp_path / "secret"
    assert env_secret("SOME_SECRET", fallback_file=path, generate=False) == ""
    assert not path.exists()  # nothing generated behind the operator's back


def test_a_secret_generated_earlier_is_not_used_where_none_may_be_generated(monkeypatch, tmp_path):
    # A var/ folder copied from a development machine must not slip into production.
    monkeypatch.delenv("SOME_SECRET", raising=False)
    path = tmp_path / "secret"
    env_secret("SOME_SECRET", fallback_file=path, generate=True)
    assert env_secret("SOME_SECRET", fallback_file=path, generate=False) == ""
