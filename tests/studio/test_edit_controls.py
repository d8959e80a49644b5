"""Who sees which controls: each page shows its edit controls to the roles that may use them
and to no one else (the server refuses the rest anyway: tests/studio/test_permissions.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROLES = ["owner", "editor", "reviewer", "viewer", "outsider"]
EDITORS = frozenset({"owner", "editor"})
OWNERS = frozenset({"owner"})


class Controls(HTMLParser):
    """A page's controls by where they lead: ("form", action) for each POST form (its own
    page when it has no action), ("link", href), ("hx-post", url) and ("hx-get", url)."""

    def __init__(self, page: str, path: str) -> None:
        super().__init__()
        self.path = path
        self.found: set[tuple[str, str]] = set()
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("method", "").lower() == "post":
            self.found.add(("form", attributes.get("action") or self.path))
        if tag == "a" and attributes.get("href"):
            self.found.add(("link", attributes["href"]))
        for name in ("hx-post", "hx-get"):
            if attributes.get(name):
                self.found.add((name, attributes[name]))


@dataclass(frozen=True)
class Page:
    """A page, the roles that may act on it, and the controls they alone should see."""

    name: str
    target: str | None
    may: frozenset[str]
    controls: Callable[[Callable[..., str]], list[tuple[str, str]]]

    def __str__(self) -> str:
        return self.name


PAGES = [
    Page(
        "episode_detail",
        "episode",
        EDITORS,
        lambda url: [
            ("link", url("episode_edit", "episode")),
            ("link", url("episode_delete", "episode")),
            ("link", url("episode_generate", "episode")),
            ("hx-get", url("scene_create", "episode")),
            ("hx-get", url("scene_edit", "scene")),
            ("hx-get", url("scene_generate", "scene")),
            ("form", url("scene_move", "scene")),
            ("form", url("scene_duplicate", "scene")),
            ("hx-post", url("scene_delete", "scene")),
        ],
    ),
    Page(
        "scene_detail",
        "scene",
        EDITORS,
        lambda url: [
            ("link", url("scene_edit", "scene")),
            ("form", url("scene_generate", "scene")),
            ("form", url("take_cancel", "running")),
            ("form", url("take_select", "finished")),
            ("form", url("take_retry", "failed")),
            ("hx-post", url("take_delete", "finished")),
            ("form", url("take_remix", "finished")),
            ("form", url("take_extend", "finished")),
            ("form", url("take_character", "finished")),
        ],
    ),
    Page(
        "character_list",
        None,
        EDITORS,
        lambda url: [("link", url("character_create"))],
    ),
    Page(
        "character_detail",
        "character",
        EDITORS,
        lambda url: [
            ("link", url("character_edit", "character")),
            ("link", url("character_delete", "character")),
            ("form", url("asset_upload", "character")),
            ("form", url("asset_delete", "character", "asset")),
            ("form", url("character_share", "character")),
            ("form", url("character_unshare", "character", "share")),
        ],
    ),
    Page(
        "series_detail",
        "series",
        EDITORS,
        lambda url: [
            ("link", url("series_edit", "series")),
            ("link", url("series_delete", "series")),
            ("form", url("episode_create", "series")),
        ],
    ),
    Page(
        # Budgets are the owners' alone: editors see the spend, not the forms.
        "costs",
        None,
        OWNERS,
        lambda url: [
            ("form", url("budget_save")),
            ("form", url("budget_delete", "budget")),
        ],
    ),
    Page(
        "members",
        None,
        OWNERS,
        lambda url: [
            ("form", url("members")),  # adding a member posts to the page itself
            ("form", url("member_role", "member")),
            ("form", url("member_remove", "member")),
        ],
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=str)
def test_each_page_shows_its_edit_controls_only_to_roles_that_may_use_them(
    client, members, world, role, page: Page
):
    def url(name: str, *keys: str) -> str:
        return reverse(name, args=[world["slug"], *(world[key] for key in keys)])

    client.force_login(members[role])
    path = url(page.name, *([page.target] if page.target else []))
    response = client.get(path)
    controls = set(page.controls(url))

    if role == "outsider":
        assert response.status_code == 404
        return
    assert response.status_code == 200
    found = Controls(response.content.decode(), path).found
    if role in page.may:
        assert controls - found == set(), "missing"
    else:
        assert controls & found == set(), "shown to a role that may not use them"
