"""Load test: simulated users on a 300-scene storyboard mid-generation, over loopback HTTP.

What it measures: how the production stack serves many people at once, each with the
storyboard open in a browser tab, and the same load on `manage.py runserver` (what
`make run` serves with) for comparison. Everything runs on 127.0.0.1 for a fixed time;
every process started is stopped at the end, also after an error or Ctrl-C.

The stack (benchmarks/_stack.py), fresh for each server: a database (PostgreSQL on
127.0.0.1:5432 when it answers, database `castboard_bench_load`, dropped and made again;
else a SQLite file), Redis (an embedded one, or `--redis-url`'s database, flushed; never
the shell's REDIS_URL, which may be shared), the OpenAI
emulator (`manage.py run_emulators --only openai`), Procfile.serve's Celery workers and
beat, and the web server under test: gunicorn (studio/project/gunicorn.conf.py) or
runserver. DEBUG is off and static files are collected, as in production. The state
lives in var/bench/load/ (kept for inspection: logs of every process).

The data: the episode of tests/studio/test_storyboard_queries.py (`--scenes` scenes, 3
takes each in mixed states: a third of the cards have a take in flight, never due, so the
board stays mid-generation; the old page polled each of them every second), a 3 s clip
per character (OpenAI makes characters from one), one editor per simulated user
(sessions made directly, so no password hashing is measured) and an emulator account.
The emulator's latency (`--emulator-latency`, 120 s) is longer than the run: takes
started during the run stay in flight (the board stays mid-generation), and no video is
rendered on this machine's two cores, which a provider would render on its own.

Each simulated user is a browser tab with at most 6 connections to the server (what a
browser opens per host over HTTP/1.1), thinking 1-3 s (seeded, `--seed`) between actions:

* storyboard (60%): open the episode page (the first screen) and keep what the page
  asks for while it is open: its event stream if the page has `sse-connect` (one
  long-lived request, read until the tab leaves), else every in-flight card's status
  URL polled as htmx does (`hx-trigger="every 1s"`: a request, the interval, the next;
  286 stops it). When the page has a paging sentinel (`hx-trigger="revealed"`), half
  of these actions scroll instead: the next slice, and what its cards ask for;
* edit (25%): a scene's edit form (htmx), the preflight its typing triggers, then its
  post with the CSRF token and a note;
* generate (15%): a scene's generate panel, then its post on the emulator account.

Why not locust: its users run on gevent, which monkey-patches sockets and threads of the
whole process; this process also runs Django (the seeding) and must share nothing odd
with it. asyncio and httpx do the same (users, think times, per-request timing) in one
thread, in a few hundred lines, with the per-tab connection limit built in.

Printed per server: per request kind the count, throughput, p50/p95/p99 in ms (from
sending to the last byte, waiting for a free connection of the tab included, as a
browser's user waits) and errors (any status but the expected 200, or a poll's 286: a
redirect to the login page is one; an exception; a timeout of 30 s); the overall
throughput; the Celery queues' depth (LLEN of celery, media, scores every 0.5 s: min,
max and at the end); gunicorn's own time per kind, from its access log (the difference
to the client's is time waiting for a thread); the event streams open (max and at the
end), the events read and the streams cut once open (the browser reconnects: not
counted as errors); the CPU the web server used (also per request: unlike the times, it
hardly depends on what else the machine runs), the rest of the stack and this load
generator (which shares the machine). Then the
verdict: storyboard p95 under 300 ms and no errors at 50 users. Exits 0 whatever the
figures (130 on Ctrl-C).

    .venv/bin/python benchmarks/load.py [--users 50] [--seconds 60] [--servers gunicorn,runserver]
        [--scenes 300] [--seed 1] [--think 1-3] [--ramp 5] [--database auto|postgres|sqlite]
        [--emulator-latency 120] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import random
import re
import shutil
import sys
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _setup, _stack

TARGET_P95_MS = 300.0
TARGET_USERS = 50
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/castboard_bench_load"
RUN_DIR = _setup.BENCH_DIR / "load"
CONNECTIONS_PER_TAB = 6  # a browser's limit per host over HTTP/1.1
REQUEST_TIMEOUT = 30.0
# A browser never times a stream out; a stream silent for longer than its life (the live
# view's LIVE_STREAM_SECONDS, 60, plus a resync) is stuck.
STREAM_TIMEOUT = httpx.Timeout(REQUEST_TIMEOUT, read=90.0)
QUEUES = ("celery", "media", "scores")
HTMX = {"HX-Request": "true"}
WEIGHTS = (("storyboard", 0.60), ("edit", 0.25), ("generate", 0.15))
# The figures printed per request kind, in this order.
KINDS = (
    "storyboard page",
    "storyboard slice (scroll)",
    "status poll",
    "events stream (connect)",
    "edit form",
    "edit preflight",
    "edit post",
    "generate panel",
    "generate post",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="simulated users (50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured run per server (60)")
    parser.add_argument(
        "--servers", default="gunicorn,runserver", help="comma-separated: gunicorn, runserver"
    )
    parser.add_argument("--scenes", type=int, default=300, help="scenes in the episode (300)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the users (1)")
    parser.add_argument("--think", default="1-3", help="think time between actions, s (1-3)")
    parser.add_argument("--ramp", type=float, default=5.0, help="users start within (5 s)")
    parser.add_argument(
        "--database", choices=("auto", "postgres", "sqlite"), default="auto", help="(auto)"
    )
    parser.add_argument(
        "--emulator-latency", type=float, default=120.0, help="emulator seconds per take (120)"
    )
    parser.add_argument(
        "--redis-url", default="", help="a Redis database to use and flush (default: embedded)"
    )
    args = parser.parse_args(argv)
    low, _, high = args.think.partition("-")
    args.think_range = (float(low), float(high or low))
    args.server_list = [name.strip() for name in args.servers.split(",") if name.strip()]
    return args


# --- The database, Redis and the data -----------------------------------------------------------


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def choose_database(choice: str) -> str:
    """The DATABASE_URL of the run: "" for SQLite (configure_django's file)."""
    if choice == "sqlite":
        return ""
    if postgres_reachable():
        return POSTGRES_URL
    if choice == "postgres":
        raise SystemExit("PostgreSQL does not answer on 127.0.0.1:5432.")
    return ""


@dataclass
class Seeded:
    episode_url: str
    scene_count: int
    sessions: list[str]  # one session cookie a user
    session_cookie: str
    in_flight: int


def seed(*, users: int, scenes: int, emulator_url: str, media_root: Path) -> Seeded:
    """The workspace, its editors (logged in), the episode and an emulator account."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from jobs.models import IN_FLIGHT_STATES, Job, JobState, ProviderAccount
    from jobs.services import account_save
    from studio.models import Membership, Role, Take, Workspace
    from tests.studio.test_storyboard_queries import storyboard_episode

    workspace = Workspace.objects.create(name="Load studio", slug="load")
    User = get_user_model()
    people = User.objects.bulk_create(
        # An unusable password: sessions are made directly, no hashing is measured.
        User(username=f"load{i}", email=f"load{i}@example.com", password="!")  # noqa: S106
        for i in range(users)
    )
    Membership.objects.bulk_create(
        Membership(workspace=workspace, user=person, role=Role.EDITOR) for person in people
    )
    episode = storyboard_episode(workspace, scenes=scenes)
    # The fixture's account points nowhere: switched off, so routing picks the emulator's;
    # its in-flight jobs stay as they are for the whole run (nothing is due for them).
    ProviderAccount.objects.filter(workspace=workspace).update(enabled=False)
    Job.objects.filter(workspace=workspace, state=JobState.PENDING).update(
        next_poll_at=timezone.now() + timedelta(days=1)
    )
    account_save(
        account=ProviderAccount(
            workspace=workspace,
            name="OpenAI (emulator)",
            kind="openai",
            base_url=emulator_url,
            model="sora-2",
            concurrency_limit=50,
        ),
        api_key="emulator-load-key",
    )
    write_reference_files(media_root)
    add_reference_clips(workspace)
    sessions = []
    for person in people:
        client = Client()
        client.force_login(person)
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    in_flight = (
        Take.objects.filter(
            scene__episode=episode, job__state__in=[*IN_FLIGHT_STATES, JobState.PENDING]
        )
        .values("scene")
        .distinct()
        .count()
    )
    return Seeded(
        episode_url=episode.get_absolute_url(),
        scene_count=scenes,
        sessions=sessions,
        session_cookie=settings.SESSION_COOKIE_NAME,
        in_flight=in_flight,
    )


def write_reference_files(media_root: Path) -> None:
    """The fixture's reference images exist only as names: real files, so a take that
    sends a character's pictures reads them."""
    from PIL import Image

    from characters.models import ReferenceAsset

    for asset in ReferenceAsset.objects.all():
        for name, size in ((asset.file.name, 512), (asset.thumbnail.name, 128)):
            if not name:
                continue
            path = media_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            shade = (hash(name) % 200) + 30
            image = Image.new("RGB", (size, size), (shade, 120, 255 - shade))
            image.save(path, format="PNG" if name.endswith(".png") else "JPEG")


def add_reference_clips(workspace) -> None:
    """A 3 s clip for each character: OpenAI makes its characters from one, and refuses a
    scene that mentions a character without (the generate panel offers nothing then)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from characters.models import Character
    from characters.services import asset_add
    from tests.samples import clip_bytes

    clip = clip_bytes(seconds=_setup.CLIP_SECONDS)
    for character in Character.objects.filter(workspace=workspace):
        upload = SimpleUploadedFile(f"{character.handle}.mp4", clip, "video/mp4")
        asset_add(character=character, upload=upload, label="turnaround")


class Snapshot:
    """The seeded database, copied once and put back before each server's run."""

    def __init__(self, database_url: str, sqlite_path: Path) -> None:
        self.database_url = database_url
        self.sqlite_path = sqlite_path

    def _admin(self):
        import psycopg

        return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)

    def take(self) -> None:
        from django.db import connection

        if self.database_url:
            # Statistics and hint bits, as a database in use has them: without, the first
            # run's plans and reads differ from the later ones' (autovacuum gets to the
            # template meanwhile), and the first server measured pays for it.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        connection.close()
        if self.database_url:
            with self._admin() as admin:
                admin.execute('DROP DATABASE IF EXISTS "castboard_bench_load_seed" WITH (FORCE)')
                admin.execute(
                    'CREATE DATABASE "castboard_bench_load_seed" TEMPLATE "castboard_bench_load"'
                )
        else:
            shutil.copy(self.sqlite_path, self.sqlite_path.with_suffix(".seed"))

    def restore(self) -> None:
        from django.db import connection

        connection.close()
        if self.database_url:
            with self._admin() as admin:
                admin.execute('DROP DATABASE IF EXISTS "castboard_bench_load" WITH (FORCE)')
                admin.execute(
                    'CREATE DATABASE "castboard_bench_load" TEMPLATE "castboard_bench_load_seed"'
                )
        else:
            for suffix in ("-wal", "-shm"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)
            shutil.copy(self.sqlite_path.with_suffix(".seed"), self.sqlite_path)

    def drop(self) -> None:
        if self.database_url:
            with self._admin() as admin:
                admin.execute('DROP DATABASE IF EXISTS "castboard_bench_load_seed" WITH (FORCE)')


# --- Reading pages ------------------------------------------------------------------------------


def tags_with(page: str, needle: str) -> list[str]:
    """Every start tag of `page` that contains `needle` (found without parsing the page:
    a 300-scene board is ~1 MiB, and this process shares the machine with the server)."""
    tags, start = [], 0
    while (at := page.find(needle, start)) != -1:
        opening = page.rfind("<", 0, at)
        closing = page.find(">", at)
        if opening == -1 or closing == -1:
            break
        tags.append(page[opening : closing + 1])
        start = closing + 1
    return tags


def attribute(tag: str, name: str) -> str | None:
    match = re.search(rf'\s{re.escape(name)}="([^"]*)"', tag)
    return html.unescape(match.group(1)) if match else None


@dataclass
class Page:
    """What a tab keeps from a page or a fragment it loaded."""

    scene_ids: list[int]
    polls: dict[str, float]  # status URL -> interval in s
    stream: str | None  # the sse-connect URL
    next_slice: str | None  # the paging sentinel's URL
    csrf: str | None


EVERY = re.compile(r"every\s+(\d+(?:\.\d+)?)(ms|s)")


def read_page(page: str) -> Page:
    polls = {}
    for tag in tags_with(page, 'hx-trigger="every'):
        url, trigger = attribute(tag, "hx-get"), attribute(tag, "hx-trigger") or ""
        match = EVERY.search(trigger)
        if url and match:
            value = float(match.group(1))
            polls[url] = value / 1000 if match.group(2) == "ms" else value
    stream = next((attribute(tag, "sse-connect") for tag in tags_with(page, "sse-connect=")), None)
    next_slice = None
    for tag in tags_with(page, "revealed"):
        if "revealed" in (attribute(tag, "hx-trigger") or ""):
            next_slice = attribute(tag, "hx-get")
    return Page(
        scene_ids=[int(pk) for pk in re.findall(r'data-scene="(\d+)"', page)],
        polls=polls,
        stream=stream,
        next_slice=next_slice,
        csrf=csrf_of(page),
    )


def csrf_of(page: str) -> str | None:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if match:
        return match.group(1)
    match = re.search(
        r"X-CSRFToken&quot;:\s*&quot;([^&]+)&quot;|\"X-CSRFToken\":\s*\"([^\"]+)\"", page
    )
    return (match.group(1) or match.group(2)) if match else None


class FormReader(HTMLParser):
    """The fields a browser would submit from the first form of a fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._chosen: set[str] = set()  # selects whose selected option was seen
        self._forms = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._forms += 1
            if self._forms == 1:
                self.action = values.get("hx-post") or values.get("action")
        if self._forms != 1:
            return
        name = values.get("name")
        if tag == "input" and name and "disabled" not in values:
            kind = values.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in values:
                    self.fields[name] = values.get("value", "on")
            elif kind not in ("submit", "button", "file"):
                self.fields[name] = values.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            # The selected option, else the first (what a browser submits).
            first = self._select not in self.fields
            if ("selected" in values or first) and self._select not in self._chosen:
                self.fields[self._select] = values.get("value", "")
            if "selected" in values:
                self._chosen.add(self._select)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self._forms == 1:
            self._forms = 2

    def handle_data(self, data: str) -> None:
        if self._textarea:
            # A textarea's first newline is not part of its value.
            text = self.fields[self._textarea] + data
            self.fields[self._textarea] = text[1:] if text.startswith("\n") else text


def read_form(fragment: str) -> tuple[str | None, dict[str, str]]:
    reader = FormReader()
    reader.feed(fragment)
    return reader.action, reader.fields


# --- The simulated users -----------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    started: float
    ms: float
    status: int  # 0 for an exception or timeout
    error: str = ""


@dataclass
class Tally:
    samples: list[Sample] = field(default_factory=list)
    streams_open: int = 0
    streams_max: int = 0
    events: int = 0
    stream_ends: int = 0
    poll_stops: int = 0
    refusals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    streams_cut: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def stream_opened(self) -> None:
        self.streams_open += 1
        self.streams_max = max(self.streams_max, self.streams_open)


class Tab:
    """One user's browser tab: its connections, session, and what the open page runs."""

    def __init__(self, number: int, client: httpx.AsyncClient, tally: Tally, *, args, seeded):
        self.number = number
        self.client = client
        self.tally = tally
        self.rng = random.Random(args.seed * 1000 + number)  # noqa: S311 - think times, not secrets
        self.args = args
        self.seeded = seeded
        self.scene_ids: list[int] = []
        self.next_slice: str | None = None
        self.csrf: str | None = None
        self.background: dict[str, asyncio.Task] = {}  # what the open page keeps running
        self.started: list[asyncio.Task] = []  # every such task, awaited at the end
        self.edits = 0

    async def request(
        self, kind: str, method: str, url: str, *, ok=(200,), **kwargs
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
        except (httpx.HTTPError, OSError) as error:
            ms = (time.perf_counter() - started) * 1000
            self.tally.samples.append(Sample(kind, started, ms, 0, type(error).__name__))
            return None
        ms = (time.perf_counter() - started) * 1000
        error = "" if response.status_code in ok else f"status {response.status_code}"
        self.tally.samples.append(Sample(kind, started, ms, response.status_code, error))
        return None if error else response

    def headers(self, htmx: bool = True) -> dict:
        headers = dict(HTMX) if htmx else {}
        token = self.csrf or self.client.cookies.get("csrftoken")
        if token:
            headers["X-CSRFToken"] = token
        return headers

    # The page's background: an event stream or pollers.

    def leave_page(self) -> None:
        for task in self.background.values():
            task.cancel()
        self.background.clear()

    def keep(self, page: Page) -> None:
        """Start what a loaded page or fragment asks for while it is shown."""
        if page.csrf:
            self.csrf = page.csrf
        if page.stream and "stream" not in self.background:
            self.background["stream"] = self.start(self.stream(page.stream))
        for url, interval in page.polls.items():
            running = self.background.get(url)
            if running is not None:
                running.cancel()  # a swapped card restarts its element's polling
            self.background[url] = self.start(self.poll(url, interval))

    def start(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        if len(self.started) > 1000:
            self.started = [running for running in self.started if not running.done()]
        self.started.append(task)
        return task

    async def poll(self, url: str, interval: float) -> None:
        """htmx's `every Ns`: the interval, a request, its swap, the interval again."""
        while True:
            await asyncio.sleep(interval)
            response = await self.request("status poll", "GET", url, ok=(200, 286), headers=HTMX)
            if response is None or response.status_code == 286:
                self.tally.poll_stops += response is not None
                return
            following = read_page(response.text).polls.get(url)
            if following is None:
                return
            interval = following

    async def stream(self, url: str) -> None:
        """An EventSource: connect, read events until the tab leaves; reconnect as the
        browser does (after `retry:` ms, 3 s by default) when the server ends it."""
        retry, last_id = 3.0, None
        while True:
            started = time.perf_counter()
            opened = False
            # An EventSource sends no htmx headers; it sends the last id when it reconnects.
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with self.client.stream(
                    "GET", url, headers=headers, timeout=STREAM_TIMEOUT
                ) as response:
                    ms = (time.perf_counter() - started) * 1000
                    ok = response.status_code == 200
                    self.tally.samples.append(
                        Sample(
                            "events stream (connect)",
                            started,
                            ms,
                            response.status_code,
                            "" if ok else f"status {response.status_code}",
                        )
                    )
                    if not ok:
                        return
                    self.tally.stream_opened()
                    opened = True
                    async for line in response.aiter_lines():
                        if line.startswith("retry:"):
                            retry = float(line[6:].strip() or 3000) / 1000
                        elif line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line == "":
                            self.tally.events += 1
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, OSError) as error:
                if opened:
                    # Cut (a worker restarting) or silent past a stream's life: the browser
                    # reconnects and the user sees nothing, so counted apart from errors.
                    self.tally.streams_cut[type(error).__name__] += 1
                else:
                    ms = (time.perf_counter() - started) * 1000
                    self.tally.samples.append(
                        Sample("events stream (connect)", started, ms, 0, type(error).__name__)
                    )
            finally:
                if opened:
                    self.tally.streams_open -= 1
            self.tally.stream_ends += 1
            await asyncio.sleep(retry)

    # The actions.

    async def open_storyboard(self) -> None:
        self.leave_page()
        response = await self.request("storyboard page", "GET", self.seeded.episode_url)
        if response is None:
            return
        page = read_page(response.text)
        self.scene_ids = page.scene_ids
        self.next_slice = page.next_slice
        self.keep(page)

    async def scroll(self) -> None:
        url, self.next_slice = self.next_slice, None
        response = await self.request("storyboard slice (scroll)", "GET", url, headers=HTMX)
        if response is None:
            return
        page = read_page(response.text)
        self.scene_ids += page.scene_ids
        self.next_slice = page.next_slice
        self.keep(page)

    def scene_url(self, scene_id: int, what: str) -> str:
        return f"/w/load/scenes/{scene_id}/{what}/"

    async def edit(self) -> None:
        if not self.scene_ids:
            return
        scene_id = self.rng.choice(self.scene_ids)
        form = await self.request(
            "edit form", "GET", self.scene_url(scene_id, "edit"), headers=self.headers()
        )
        if form is None:
            return
        action, fields = read_form(form.text)
        self.edits += 1
        fields["notes"] = f"Load test: user {self.number}, edit {self.edits}."
        await self.think(0.5, 1.5)  # typing
        # The form's preflight box follows what is typed (hx-trigger "input delay:700ms").
        preflight = next(
            (attribute(tag, "hx-get") for tag in tags_with(form.text, 'class="preflight-box"')),
            None,
        )
        if preflight:
            await self.request(
                "edit preflight", "GET", preflight, params=fields, headers=self.headers()
            )
        card = await self.request(
            "edit post",
            "POST",
            action or self.scene_url(scene_id, "edit"),
            data=fields,
            headers=self.headers(),
        )
        if card is not None:
            self.keep(read_page(card.text))

    async def generate(self) -> None:
        if not self.scene_ids:
            return
        scene_id = self.rng.choice(self.scene_ids)
        panel = await self.request(
            "generate panel", "GET", self.scene_url(scene_id, "generate"), headers=self.headers()
        )
        if panel is None:
            return
        action, fields = read_form(panel.text)
        if "account" not in fields:
            self.tally.refusals["generate panels with no provider to choose"] += 1
            kept = RUN_DIR / "generate-panel.html"
            if not kept.exists():  # the first one, to read why
                kept.write_text(panel.text)
            return
        await self.think(0.3, 1.0)
        card = await self.request(
            "generate post",
            "POST",
            action or self.scene_url(scene_id, "generate"),
            data=fields,
            headers=self.headers(),
        )
        if card is not None:
            self.keep(read_page(card.text))

    async def think(self, low: float | None = None, high: float | None = None) -> None:
        if low is None:
            low, high = self.args.think_range
        await asyncio.sleep(self.rng.uniform(low, high))

    async def live(self, deadline: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.args.ramp))
        try:
            await self.open_storyboard()
            while time.perf_counter() < deadline:
                await self.think()
                roll, action = self.rng.random(), "storyboard"
                for name, weight in WEIGHTS:
                    if roll < weight:
                        action = name
                        break
                    roll -= weight
                if action == "storyboard":
                    if self.next_slice and self.rng.random() < 0.5:
                        await self.scroll()
                    else:
                        await self.open_storyboard()
                elif action == "edit":
                    await self.edit()
                else:
                    await self.generate()
        finally:
            self.leave_page()


# --- One run -------------------------------------------------------------------------------------


class QueueSampler(threading.Thread):
    """The Celery queues' lengths every half second (LLEN of each queue's list)."""

    def __init__(self, redis_url: str) -> None:
        import redis

        super().__init__(name="queue-sampler", daemon=True)
        self.redis = redis.Redis.from_url(redis_url)
        self.samples: list[dict[str, int]] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.5):
            # A missed sample is not a figure.
            with suppress(Exception):
                self.samples.append({queue: self.redis.llen(queue) for queue in QUEUES})

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


async def warm_up(base_url: str, seeded: Seeded, rounds: int = 12) -> str:
    """Unmeasured requests of every kind first, `rounds` at a time so that each server
    process gets some (each loads its templates on its first requests); says what the page
    asks a browser for."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        client.cookies.set(seeded.session_cookie, seeded.sessions[0])
        pages = await asyncio.gather(*(client.get(seeded.episode_url) for _ in range(rounds)))
        response = pages[-1]
        page = read_page(response.text)
        scene = page.scene_ids[0] if page.scene_ids else 0
        urls = [f"/w/load/scenes/{scene}/edit/", f"/w/load/scenes/{scene}/generate/"]
        if page.next_slice:
            urls.append(page.next_slice)
        await asyncio.gather(
            *(client.get(url, headers=HTMX) for url in urls for _ in range(rounds))
        )
    sent = response.num_bytes_downloaded
    encoding = response.headers.get("content-encoding", "uncompressed")
    return (
        f"the page: {len(response.content) / 1024:.0f} KiB ({sent / 1024:.0f} KiB sent, "
        f"{encoding}), {len(page.scene_ids)} cards on the first screen, "
        + (
            f"an event stream ({page.stream})"
            if page.stream
            else f"{len(page.polls)} status URLs polled (no event stream)"
        )
        + (", a paging sentinel" if page.next_slice else ", no paging")
    )


async def run_users(base_url: str, seeded: Seeded, args) -> tuple[Tally, float]:
    tally = Tally()
    clients = []
    for number in range(args.users):
        client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, pool=REQUEST_TIMEOUT),
            limits=httpx.Limits(
                max_connections=CONNECTIONS_PER_TAB, max_keepalive_connections=CONNECTIONS_PER_TAB
            ),
        )
        client.cookies.set(seeded.session_cookie, seeded.sessions[number % len(seeded.sessions)])
        clients.append(client)
    tabs = [Tab(n, client, tally, args=args, seeded=seeded) for n, client in enumerate(clients)]
    started = time.perf_counter()
    deadline = started + args.seconds
    lives = [asyncio.create_task(tab.live(deadline)) for tab in tabs]
    # The fixed duration: whatever is still running at the deadline is cancelled.
    await asyncio.wait(lives, timeout=args.seconds)
    for task in lives:
        task.cancel()
    for tab in tabs:
        tab.leave_page()
    await asyncio.gather(*lives, *(t for tab in tabs for t in tab.started), return_exceptions=True)
    for client in clients:
        await client.aclose()
    return tally, time.perf_counter() - started


# gunicorn's access log line (studio/project/gunicorn.conf.py) ends with the request's time
# in the server: with the client's figure, it tells serving from waiting for a thread.
ACCESS_LINE = re.compile(r'"(GET|POST) (\S+) HTTP/[\d.]+" (\d+) \S+ (\d+)ms')
SERVER_PATHS = (
    ("GET", re.compile(r"/episodes/\d+/$"), "storyboard page"),
    ("GET", re.compile(r"/episodes/\d+/scenes/$"), "storyboard slice (scroll)"),
    ("GET", re.compile(r"/scenes/\d+/status/$"), "status poll"),
    ("GET", re.compile(r"/scenes/\d+/edit/$"), "edit form"),
    ("GET", re.compile(r"/preflight/$"), "edit preflight"),
    ("POST", re.compile(r"/scenes/\d+/edit/$"), "edit post"),
    ("GET", re.compile(r"/scenes/\d+/generate/$"), "generate panel"),
    ("POST", re.compile(r"/scenes/\d+/generate/$"), "generate post"),
    ("GET", re.compile(r"/episodes/\d+/events/$"), "events stream (held open)"),
    ("GET", re.compile(r"/episodes/\d+/statuses/$"), "statuses (fallback poll)"),
)


def server_times(log_path: Path, offset: int) -> dict[str, list[float]]:
    """Milliseconds in the server per request kind, from the access log after `offset`;
    event streams (held open for a tab's life) and anything else apart."""
    times: dict[str, list[float]] = defaultdict(list)
    text = log_path.read_bytes()[offset:].decode(errors="replace")
    for method, target, _, ms in ACCESS_LINE.findall(text):
        path = target.split("?")[0]
        kind = next(
            (
                name
                for verb, pattern, name in SERVER_PATHS
                if verb == method and pattern.search(path)
            ),
            "other",
        )
        times[kind].append(float(ms))
    return {kind: sorted(values) for kind, values in times.items()}


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class Result:
    server: str
    note: str
    tally: Tally
    seconds: float
    queue_samples: list[dict[str, int]]
    web_cpu: float
    stack_cpu: float
    client_cpu: float
    server_times: dict[str, list[float]]

    def rows(self, kind: str) -> tuple[list[float], int, dict]:
        samples = [s for s in self.tally.samples if s.kind == kind]
        errors: dict[str, int] = defaultdict(int)
        for sample in samples:
            if sample.error:
                errors[sample.error] += 1
        return sorted(s.ms for s in samples), len(samples), errors

    def storyboard_p95(self) -> float | None:
        times, _, _ = self.rows("storyboard page")
        return percentile(times, 0.95) if times else None

    @property
    def errors(self) -> int:
        return sum(1 for sample in self.tally.samples if sample.error)


def report(result: Result, users: int) -> None:
    print(f"\n{result.server}: {result.note}; {users} users for {result.seconds:.1f} s")
    print(
        f"  {'request':28} {'count':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f"  errors"
    )
    for kind in KINDS:
        times, count, errors = result.rows(kind)
        if not count:
            print(f"  {kind:28} {0:>6}")
            continue
        detail = ", ".join(f"{n} {why}" for why, n in sorted(errors.items())) or "0"
        print(
            f"  {kind:28} {count:>6} {count / result.seconds:>7.1f}"
            f" {percentile(times, 0.50):>8.0f} {percentile(times, 0.95):>8.0f}"
            f" {percentile(times, 0.99):>8.0f}  {detail}"
        )
    total = len(result.tally.samples)
    print(
        f"  {'all':28} {total:>6} {total / result.seconds:>7.1f}"
        f"{'':28}  {result.errors} error{'s' if result.errors != 1 else ''}"
    )
    if result.queue_samples:
        depths = []
        for queue in QUEUES:
            seen = [sample[queue] for sample in result.queue_samples]
            depths.append(f"{queue} {min(seen)}/{max(seen)}/{seen[-1]}")
        print(
            f"  Celery queues, min/max/at the end ({len(result.queue_samples)} samples): "
            + ", ".join(depths)
        )
    if result.server_times:
        print(
            "  time in the server (its access log), ms: "
            + "; ".join(
                f"{kind} p50 {percentile(t, 0.5):.0f} p95 {percentile(t, 0.95):.0f} ({len(t)})"
                for kind, t in result.server_times.items()
            )
        )
    tally = result.tally
    print(
        f"  event streams: {tally.streams_max} open at most, {tally.streams_open} at the end, "
        f"{tally.events} events read, {tally.stream_ends} ended (reconnected), cut: "
        f"{', '.join(f'{n} {why}' for why, n in tally.streams_cut.items()) or 0}; "
        f"polls stopped by 286: {tally.poll_stops}"
    )
    for why, count in tally.refusals.items():
        print(f"  {why}: {count}")
    # CPU per request hardly depends on what else the machine runs, unlike the times.
    per_request = result.web_cpu * 1000 / total if total else 0.0
    print(
        f"  CPU: web server {result.web_cpu / result.seconds:.2f} cores "
        f"({per_request:.0f} ms a request, event streams included), rest of the stack "
        f"{result.stack_cpu / result.seconds:.2f}, this load generator "
        f"{result.client_cpu / result.seconds:.2f} (of {os.cpu_count()})"
    )


def run_server(server: str, *, args, seeded: Seeded, redis_url: str, ports: dict) -> Result:
    from django.db import connection

    connection.close()
    with _stack.Stack(
        RUN_DIR,
        server=server,
        web_port=ports["web"],
        emulator_port=ports["emulator"],
        emulator_latency=args.emulator_latency,
    ) as stack:
        base_url = f"http://127.0.0.1:{ports['web']}"
        print(f"\n{server}: {asyncio.run(warm_up(base_url, seeded))}")
        sampler = QueueSampler(redis_url)
        others = [
            p
            for process in stack.processes
            if process is not stack.web
            for p in _stack.group_pids(process.pid)
        ]
        web_pids = stack.web_pids()
        log_offset = stack.web.log_path.stat().st_size
        web_before, others_before = _stack.cpu_seconds(web_pids), _stack.cpu_seconds(others)
        client_before = time.process_time()
        sampler.start()
        try:
            tally, seconds = asyncio.run(run_users(base_url, seeded, args))
        finally:
            sampler.stop()
        return Result(
            server=server,
            note=stack.server_note,
            tally=tally,
            seconds=seconds,
            queue_samples=sampler.samples,
            web_cpu=_stack.cpu_seconds(web_pids) - web_before,
            stack_cpu=_stack.cpu_seconds(others) - others_before,
            client_cpu=time.process_time() - client_before,
            server_times=server_times(stack.web.log_path, log_offset)
            if server == "gunicorn"
            else {},
        )


def flush_redis(redis_url: str) -> None:
    """Empty the run's Redis database (queues, rate-limit counters) before a server's run."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from studio.project.redis_server import free_port

    shutil.rmtree(RUN_DIR, ignore_errors=True)
    (RUN_DIR / "media").mkdir(parents=True)
    (RUN_DIR / "tmp").mkdir()
    database_url = choose_database(args.database)
    ports = {"web": free_port(), "emulator": free_port()}
    # Loopback HTTP: the cookies cannot be marked Secure (a browser would not send them
    # back over plain HTTP); production sets them behind its TLS proxy.
    os.environ.update(
        {
            "CASTBOARD_VAR_DIR": str(RUN_DIR / "var"),  # STATIC_ROOT and beat's files
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            # The generation limits guard spending, not the server: 50 users generating
            # every ~15 s would be refused by the workspace's 60 a minute.
            "RATE_LIMIT_GENERATE": "100000/60",
            "RATE_LIMIT_GENERATE_WORKSPACE": "100000/60",
            "EMULATOR_OPENAI_URL": f"http://127.0.0.1:{ports['emulator']}/v1",
        }
    )
    redis_process = None
    # Not REDIS_URL from the environment: each run flushes its database, and a shell's
    # REDIS_URL may be shared with something else running.
    redis_url = args.redis_url
    snapshot = None
    try:
        if not redis_url:
            redis_process, redis_url = _setup.start_redis_server(RUN_DIR / "redis")
        preset = {name for name in _setup.ENGINE_DEFAULTS if name in os.environ}
        _setup.configure_django(
            RUN_DIR,
            redis_url=redis_url,
            public_url=f"http://127.0.0.1:{ports['web']}",
            database_url=database_url,
        )
        # The other benchmarks poll as fast as the provider allows (100 ms); this one runs
        # the engine on the settings' production defaults (a JOBS_* from the shell wins).
        for name in set(_setup.ENGINE_DEFAULTS) - preset:
            os.environ.pop(name, None)
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
        seeded = seed(
            users=args.users,
            scenes=args.scenes,
            emulator_url=f"http://127.0.0.1:{ports['emulator']}/v1",
            media_root=RUN_DIR / "media",
        )
        snapshot = Snapshot(database_url, RUN_DIR / "db.sqlite3")
        snapshot.take()
        print(
            f"Castboard load test: {args.users} users (one editor and tab each, "
            f"{CONNECTIONS_PER_TAB} connections a tab), {args.seconds:g} s per server, think "
            f"{args.think} s, seed {args.seed}; a {seeded.scene_count}-scene board with "
            f"{seeded.in_flight} cards in flight; "
            f"database: {'PostgreSQL (castboard_bench_load)' if database_url else 'SQLite'}; "
            f"Redis: {'--redis-url' if redis_process is None else 'embedded'}; "
            f"emulator latency {args.emulator_latency:g} s; engine on its default settings; "
            f"machine: {_setup.machine_load()}"
        )
        results = []
        for server in args.server_list:
            snapshot.restore()
            flush_redis(redis_url)
            result = run_server(server, args=args, seeded=seeded, redis_url=redis_url, ports=ports)
            report(result, args.users)
            results.append(result)
        print(
            f"\ntargets (at {TARGET_USERS} users: storyboard p95 under {TARGET_P95_MS:g} ms on "
            f"the production server, no errors on any); machine now: {_setup.machine_load()}"
        )
        for result in results:
            p95 = result.storyboard_p95()
            at = "" if args.users == TARGET_USERS else f" (run at {args.users} users)"
            shown = f"{p95:.0f} ms" if p95 is not None else "no page served"
            if result.server == "gunicorn":  # the latency target is the production server's
                print(
                    _setup.verdict(
                        f"{result.server}: storyboard p95 under {TARGET_P95_MS:g} ms{at}",
                        p95 is not None and p95 < TARGET_P95_MS and args.users >= TARGET_USERS,
                        shown,
                    )
                )
            else:
                print(f"  [for comparison, no target] {result.server}: storyboard p95{at}: {shown}")
            print(
                _setup.verdict(
                    f"{result.server}: no errors{at}",
                    result.errors == 0 and args.users >= TARGET_USERS,
                    f"{result.errors} of {len(result.tally.samples)} requests",
                )
            )
    finally:
        if snapshot is not None:
            with suppress(Exception):  # the run's figures matter more than this copy
                snapshot.drop()
        if redis_process is not None:
            _setup.stop_process(redis_process)
        shutil.rmtree(RUN_DIR / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_setup.run_main(main))
