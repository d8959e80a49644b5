"""The character library's pages: list, detail, create, edit, references, sharing."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from characters import services
from characters.forms import AssetUploadForm, CharacterForm, ShareForm
from characters.models import Character
from characters.selectors import character_library
from characters.uploads import rejected_upload_messages
from studio.access import asset_for, character_for, membership_for, require
from studio.http import HtmxHttpRequest, confirm_delete, serve_stored_file
from studio.models import Membership


def _store_references(
    request: HtmxHttpRequest, character: Character, files: list, label: str
) -> tuple[int, list[str]]:
    """Store each accepted file; return how many were stored and why others were refused."""
    problems = list(rejected_upload_messages(request))
    stored = 0
    for upload in files:
        try:
            services.asset_add(
                character=character, upload=upload, label=label, created_by=request.user
            )
        except ValidationError as error:
            problems.extend(error.messages)
        else:
            stored += 1
    return stored, problems


@login_required
@require_GET
def character_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    own, shared = character_library(workspace=membership.workspace)
    context = {"membership": membership, "own": own, "shared": shared}
    return render(request, "characters/character_list.html", context)


@login_required
@require_GET
def character_detail(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id)
    return render(
        request, "characters/character_detail.html", _detail_context(membership, character)
    )


def _detail_context(membership: Membership, character: Character, **extra: object) -> dict:
    owned = character.workspace_id == membership.workspace_id
    return {
        "membership": membership,
        "character": character,
        "owned": owned,
        "can_change": owned and membership.can_edit,
        "assets": character.assets.all(),
        "shares": character.shares.select_related("workspace") if owned else [],
        "scenes": character.scenes.filter(episode__series__workspace=membership.workspace)
        .select_related("episode__series__workspace")
        .order_by("episode__series__title", "episode__number", "position"),
        "upload_form": AssetUploadForm(),
        "share_form": ShareForm(),
        **extra,
    }


def _check_references(request: HtmxHttpRequest, form: CharacterForm) -> bool:
    """Put a plain error on the form for every refused reference file."""
    problems = rejected_upload_messages(request)
    for upload in form.cleaned_data.get("references", []):
        try:
            services.asset_check(upload=upload)
        except ValidationError as error:
            problems.extend(error.messages)
    for problem in problems:
        form.add_error("references", problem)
    return not problems


@login_required
@require_http_methods(["GET", "POST"])
def character_create(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "edit")
    return _character_form(request, membership, character=None)


@login_required
@require_http_methods(["GET", "POST"])
def character_edit(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    return _character_form(request, membership, character=character)


def _character_form(
    request: HtmxHttpRequest, membership: Membership, *, character: Character | None
) -> HttpResponse:
    """Create or edit a character with its new references, all or nothing.

    A refused file keeps everything typed and says why; nothing is saved until
    every file passes.
    """
    if request.method == "POST":
        # Always bound on POST, so an empty body shows what is missing. The instance
        # is a copy: the form writes what was typed onto it, and a page re-shown
        # after an error should still name the character as stored.
        form = CharacterForm(request.POST, request.FILES, instance=copy.copy(character))
    else:
        form = CharacterForm(instance=character)
    # Check the files even when a field is wrong, so one round trip names every problem.
    if request.method == "POST" and all([form.is_valid(), _check_references(request, form)]):
        fields = {key: form.cleaned_data[key] for key in ("name", "handle", "description")}
        try:
            with transaction.atomic():
                if character is None:
                    saved = services.character_create(
                        workspace=membership.workspace, created_by=request.user, **fields
                    )
                else:
                    saved = services.character_update(
                        character=Character.objects.get(pk=character.pk), **fields
                    )
        except ValidationError as error:
            field = "handle" if "handle" in getattr(error, "error_dict", {}) else None
            form.add_error(field, error.messages)
        else:
            _, problems = _store_references(
                request, saved, form.cleaned_data["references"], label=""
            )
            for problem in problems:
                messages.error(request, problem)
            if character is None:
                messages.success(request, f"{saved.name} joined the library as @{saved.handle}.")
            else:
                messages.success(request, "Character saved.")
            return redirect(saved)
    context = {"membership": membership, "form": form, "character": character}
    return render(request, "characters/character_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def character_delete(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    return confirm_delete(
        request,
        membership=membership,
        target=character,
        delete=lambda: services.character_delete(character=character),
        done=reverse("character_list", args=[slug]),
        message=f"{character.name} was deleted.",
        cancel_url=character.get_absolute_url(),
        consequence="Scenes that mention it will need another character before they generate.",
    )


@login_required
@require_POST
def asset_upload(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    form = AssetUploadForm(request.POST, request.FILES)
    problems = rejected_upload_messages(request)
    if form.is_valid():
        stored, problems = _store_references(
            request, character, form.cleaned_data["references"], form.cleaned_data["label"]
        )
        if stored:
            messages.success(request, f"{stored} reference{'s' if stored > 1 else ''} added.")
    elif not problems:
        problems = ["Choose at least one image or clip to upload."]
    for problem in problems:
        messages.error(request, problem)
    return redirect(character)


@login_required
@require_GET
def asset_file(
    request: HtmxHttpRequest, slug: str, character_id: int, asset_id: int, variant: str
) -> HttpResponse:
    """A reference file or its thumbnail, for members of a workspace that can see it."""
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id)
    asset = asset_for(character, asset_id)
    if variant == "thumbnail":
        return serve_stored_file(request, asset.thumbnail, content_type="image/jpeg")
    if variant == "original":
        return serve_stored_file(request, asset.file, content_type=asset.content_type)
    raise Http404


@login_required
@require_POST
def asset_delete(
    request: HtmxHttpRequest, slug: str, character_id: int, asset_id: int
) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    services.asset_delete(asset=asset_for(character, asset_id))
    if request.htmx:
        return HttpResponse("")
    messages.success(request, "Reference removed.")
    return redirect(character)


@login_required
@require_POST
def character_share(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    form = ShareForm(request.POST)
    if form.is_valid():
        try:
            share = services.character_share(
                character=character,
                workspace_slug=form.cleaned_data["workspace"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error("workspace", error)
        else:
            messages.success(
                request, f"{character.name} is now shared with {share.workspace.name}."
            )
            return redirect(character)
    context = _detail_context(membership, character, share_form=form)
    return render(request, "characters/character_detail.html", context, status=400)


@login_required
@require_POST
def character_unshare(
    request: HtmxHttpRequest, slug: str, character_id: int, share_id: int
) -> HttpResponse:
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    share = character.shares.select_related("workspace").filter(pk=share_id).first()
    if share is None:
        raise Http404
    services.character_unshare(share=share)
    messages.success(request, f"{share.workspace.name} can no longer use {character.name}.")
    return redirect(character)
