"""Guard rails: migrations in step with models, production settings pass the deploy check."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_every_model_change_has_a_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"Missing migrations:\n{out.getvalue()}")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _production_env(tmp_path: Path) -> dict[str, str]:
    ours = ("DEBUG", "SECURE_", "DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY", "ENCRYPTION_KEYS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="castboard.example",
        CASTBOARD_VAR_DIR=str(tmp_path),
    )
    return env


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_malformed_setting_stops_the_process_with_its_name(tmp_path):
    env = _production_env(tmp_path) | {"DEBUG": "perhaps"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DEBUG must be a boolean (true/false, 1/0), got 'perhaps'" in result.stderr


def _run(argv: list[str], *, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and tools, fixed arguments
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# The processes that serve or work, each started as an operator would.
SERVING = {
    "web (WSGI)": [sys.executable, "-c", "import studio.project.wsgi"],
    "web (ASGI)": [sys.executable, "-c", "import studio.project.asgi"],
    "worker": [sys.executable, "-m", "celery", "-A", "studio", "worker", "--pool", "solo"],
    "beat": [sys.executable, "-m", "celery", "-A", "studio", "beat"],
}


@pytest.mark.parametrize("process", sorted(SERVING))
@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEYS"])
def test_production_without_a_key_stops_the_process_with_its_name(tmp_path, missing, process):
    env = _production_env(tmp_path) | {"REDIS_URL": "redis://127.0.0.1:9/0"}
    del env[missing]
    argv = [*SERVING[process]]
    if process == "beat":
        argv += ["--schedule", str(tmp_path / "beat-schedule")]
    result = _run(argv, env=env)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stdout + result.stderr
    # Nothing generated: a second host would have had a different key.
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "encryption_key").exists()


def test_the_deploy_check_names_a_missing_key(tmp_path):
    env = _production_env(tmp_path)
    del env["ENCRYPTION_KEYS"]
    result = _manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "studio.E001" in result.stdout + result.stderr
    assert "ENCRYPTION_KEYS must be set when DEBUG is off" in result.stdout + result.stderr


def test_commands_that_need_no_key_still_run_without_them(tmp_path):
    env = _production_env(tmp_path)
    del env["SECRET_KEY"], env["ENCRYPTION_KEYS"]
    result = _manage("makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_a_development_machine_still_starts_with_generated_keys(tmp_path):
    env = _production_env(tmp_path) | {"DEBUG": "true"}
    del env["SECRET_KEY"], env["ENCRYPTION_KEYS"]
    result = _manage("check", env=env)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in tmp_path.iterdir()} >= {"secret_key", "encryption_key"}


def test_a_fresh_checkout_migrates_without_a_var_folder(tmp_path):
    folder = tmp_path / "var-not-made-yet"
    env = _production_env(folder)  # keys given: nothing else would make the folder
    env.pop("DATABASE_URL", None)  # the default: SQLite under the var folder
    result = _manage("migrate", "--noinput", env=env)
    assert result.returncode == 0, result.stderr
    assert (folder / "castboard.sqlite3").exists()
