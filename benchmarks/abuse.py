"""What a careless or hostile user gets from outside, over real HTTP: bursts of takes,
imports and bad sign-ins, provider accounts aimed inside the network, and a take made
while Redis is down.

The Django app runs on a loopback port (threaded WSGI server), with a real Celery worker,
an embedded Redis and the OpenAI emulator (`_setup.Bench`); the probe is an httpx client
with a logged-in session, as a browser would be. It prints what came back: how many of
each burst were refused with 429 and after how many, the Retry-After, which private base
URLs were refused, and whether the take made while Redis was down answered without an
error and was made (and paid) exactly once when Redis came back.

    .venv/bin/python benchmarks/abuse.py [--burst 40]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _setup

PRIVATE_BASE_URLS = [
    "http://127.0.0.1:6379/",
    "http://[::1]:8101/v1",
    "http://localhost:8101/v1",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1:6379/",
    "http://192.168.0.10/v1",
]
PASSWORD = "probe-password-1234"  # noqa: S105 - the probe's own throwaway user


def _csrf(client: httpx.Client, url: str) -> str:
    page = client.get(url).text
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError(f"no CSRF token on {url}")
    return match.group(1)


def _login(base: str, username: str, password: str) -> tuple[httpx.Client, int]:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    token = _csrf(client, "/login/")
    answer = client.post(
        "/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token}
    )
    return client, answer.status_code


def _burst(client: httpx.Client, count: int, send) -> tuple[Counter, int | None, str]:
    statuses: Counter = Counter()
    first_refused, retry_after = None, ""
    for n in range(1, count + 1):
        answer = send()
        statuses[answer.status_code] += 1
        if answer.status_code == 429 and first_refused is None:
            first_refused, retry_after = n, answer.headers.get("Retry-After", "")
    return statuses, first_refused, retry_after


def _line(what: str, statuses: Counter, first: int | None, retry_after: str) -> str:
    counts = ", ".join(f"{n}× {code}" for code, n in sorted(statuses.items()))
    refused = f"first 429 at #{first}, Retry-After {retry_after} s" if first else "never refused"
    return f"  {what:44} {counts:28} {refused}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=40, help="requests per burst (default 40)")
    args = parser.parse_args()
    # Plain HTTP on loopback: the session and CSRF cookies must travel without TLS.
    os.environ.update(SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false")
    with _setup.Bench("abuse", worker_concurrency=2, web=True, keep_media=False) as bench:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        # DEBUG is off: pages name their static files from the manifest, as in production.
        settings.STATIC_ROOT = bench.run_dir / "static"
        call_command("collectstatic", interactive=False, verbosity=0)

        from jobs.models import Job, LedgerEntry
        from studio.models import Membership, Role

        with _setup.emulator(latency_seconds=0.5) as running:
            studio = _setup.make_studio(scenes=1)
            account = _setup.make_account(studio, running, name="OpenAI", concurrency=4)
            user = get_user_model().objects.create_user("editor", password=PASSWORD)
            Membership.objects.create(workspace=studio.workspace, user=user, role=Role.EDITOR)
            slug, scene, character = studio.workspace.slug, studio.scenes[0], studio.character
            base = bench.web.url
            print(
                f"Limits: takes {settings.RATE_LIMIT_GENERATE} a user and "
                f"{settings.RATE_LIMIT_GENERATE_WORKSPACE} a workspace, imports "
                f"{settings.RATE_LIMIT_IMPORT}, failed sign-ins {settings.RATE_LIMIT_LOGIN} per "
                f"name and address; {_setup.machine_load()}."
            )

            # Bad sign-ins first: the right password is refused too once held back.
            anonymous = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
            token = _csrf(anonymous, "/login/")
            started = time.monotonic()
            statuses, first, retry = _burst(
                anonymous,
                args.burst,
                lambda: anonymous.post(
                    "/login/",
                    data={"username": "editor", "password": "wrong", "csrfmiddlewaretoken": token},
                ),
            )
            print(
                _line(
                    f"{args.burst} bad sign-ins ({time.monotonic() - started:.1f} s)",
                    statuses,
                    first,
                    retry,
                )
            )
            _, right = _login(base, "editor", PASSWORD)
            print(f"  {'then the right password, same address':44} {right}")
            from studio.project import ratelimit

            ratelimit.clear("login:account-address", "editor@127.0.0.1")
            client, status = _login(base, "editor", PASSWORD)
            if status != 302:
                raise RuntimeError(f"sign-in failed: {status}")

            scene_url = f"/w/{slug}/scenes/{scene.pk}/"
            token = _csrf(client, scene_url)
            started = time.monotonic()
            statuses, first, retry = _burst(
                client,
                args.burst,
                lambda: client.post(
                    f"/w/{slug}/scenes/{scene.pk}/generate/",
                    data={"account": str(account.pk), "csrfmiddlewaretoken": token},
                ),
            )
            made = Job.objects.filter(workspace=studio.workspace).count()
            print(
                _line(
                    f"{args.burst} generates ({time.monotonic() - started:.1f} s)",
                    statuses,
                    first,
                    retry,
                )
                + f"; {made} takes made"
            )

            detail = f"/w/{slug}/characters/{character.pk}/"
            token = _csrf(client, detail)
            started = time.monotonic()
            statuses, first, retry = _burst(
                client,
                args.burst,
                lambda: client.post(
                    f"{detail}references/",
                    data={
                        "reference_url": "http://127.0.0.1:9/x.png",
                        "csrfmiddlewaretoken": token,
                    },
                ),
            )
            print(
                _line(
                    f"{args.burst} imports from a web address ({time.monotonic() - started:.1f} s)",
                    statuses,
                    first,
                    retry,
                )
            )

            # Provider accounts aimed inside the network, by a workspace's own owner.
            Membership.objects.filter(user=user).update(role=Role.OWNER)
            settings.PROVIDER_ALLOWED_NETWORKS = []  # production's default (the web is in-process)
            token = _csrf(client, f"/w/{slug}/settings/providers/")
            refused = []
            for url in PRIVATE_BASE_URLS:
                answer = client.post(
                    f"/w/{slug}/settings/providers/",
                    data={
                        "name": "Probe",
                        "kind": "openai",
                        "base_url": url,
                        "model": "sora-2",
                        "enabled": "on",
                        "concurrency_limit": "1",
                        "api_key": "sk-probe-0000",
                        "csrfmiddlewaretoken": token,
                    },
                )
                if answer.status_code == 200 and "private network" in answer.text:
                    refused.append(url)
            print(
                f"  {'private base URLs refused when saved':44} {len(refused)} of "
                f"{len(PRIVATE_BASE_URLS)}"
            )
            settings.PROVIDER_ALLOWED_NETWORKS = ["127.0.0.1/32"]

            # A take made while Redis is down.
            from studio.project.redis_server import start_redis

            ratelimit.clear("generate:user", str(user.pk))
            ratelimit.clear("generate:workspace", str(studio.workspace.pk))
            port = int(bench.redis_url.rsplit(":", 1)[1].split("/")[0])
            _setup.stop_process(bench.redis)
            before = Job.objects.count()
            creates_before = sum(1 for e in _setup.emulator_log(running) if e["op"] == "create")
            started = time.monotonic()
            answer = client.post(
                f"/w/{slug}/scenes/{scene.pk}/generate/",
                data={"account": str(account.pk), "csrfmiddlewaretoken": token},
                follow_redirects=True,
            )
            took = time.monotonic() - started
            said = re.findall(r'<li class="message [^"]*">([^<]+)</li>', answer.text)
            print(
                f"  {'generate while Redis is down':44} {answer.status_code} in {took:.2f} s: "
                f"{said[0] if said else '(no message)'}"
            )
            bench.redis = start_redis(port=port, directory=bench.run_dir / "redis")
            job = Job.objects.order_by("-pk").first()
            if Job.objects.count() != before + 1:
                raise RuntimeError("the take made while Redis was down is not there")
            _setup.wait_for_jobs([job.pk], timeout=120)
            job.refresh_from_db()
            creates = sum(1 for e in _setup.emulator_log(running) if e["op"] == "create")
            creates -= creates_before
            charges = LedgerEntry.objects.filter(job=job, kind=LedgerEntry.Kind.CHARGE).count()
            print(
                f"  {'... once Redis is back':44} {job.state} {time.monotonic() - started:.1f} s "
                f"after the click; creates at the provider for it: {creates}; charges for it: "
                f"{charges}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
