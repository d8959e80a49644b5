"""The character library's URLs that several test modules open."""

from __future__ import annotations

from django.urls import reverse


def list_url(workspace) -> str:
    return reverse("character_list", args=[workspace.slug])


def create_url(workspace) -> str:
    return reverse("character_create", args=[workspace.slug])


def detail_url(character) -> str:
    return reverse("character_detail", args=[character.workspace.slug, character.pk])


def upload_url(character) -> str:
    return reverse("asset_upload", args=[character.workspace.slug, character.pk])


def share_url(character) -> str:
    return reverse("character_share", args=[character.workspace.slug, character.pk])
