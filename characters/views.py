"""The character library's pages: list, detail, create, edit, references, imports, sharing."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from characters import services
from characters.forms import AssetUploadForm, CharacterForm, ShareForm
from characters.models import Character
from characters.selectors import character_library, character_registrations, share_destinations
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
        request,
        "characters/character_detail.html",
        _detail_context(request, membership, character),
    )


def _detail_context(
    request: HtmxHttpRequest, membership: Membership, character: Character, **extra: object
) -> dict:
    owned = character.workspace_id == membership.workspace_id
    can_change = owned and membership.can_edit
    context = {
        "membership": membership,
        "character": character,
        "owned": owned,
        "can_change": can_change,
        "assets": character.assets.all(),
        "registrations": character_registrations(
            character=character, workspace=membership.workspace
        ),
        "shares": character.shares.select_related("workspace") if owned else [],
        "scenes": character.scenes.filter(episode__series__workspace=membership.workspace)
        .select_related("episode__series__workspace")
        .order_by("episode__series__title", "episode__number", "position"),
        "upload_form": None,
        "share_form": None,
    }
    if can_change:
        context["upload_form"] = AssetUploadForm()
        context["share_form"] = _share_form(request, character)
    return context | extra


def _share_form(request: HtmxHttpRequest, character: Character, data: object = None) -> ShareForm:
    return ShareForm(data, destinations=share_destinations(user=request.user, character=character))


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


def _fetch_reference(form: CharacterForm | AssetUploadForm) -> UploadedFile | None:
    """The checked file at the form's web address, if one was given.

    A refusal becomes an error on the address field, so the page shows it next to
    what was typed.
    """
    url = form.cleaned_data.get("reference_url", "").strip()
    if not url:
        return None
    try:
        return services.asset_fetch(url=url)
    except ValidationError as error:
        form.add_error("reference_url", error)
        return None


def _character_form(
    request: HtmxHttpRequest, membership: Membership, *, character: Character | None
) -> HttpResponse:
    """Create or edit a character with its new references, all or nothing.

    A refused file or web address keeps everything typed and says why; nothing is
    saved until every file passes.
    """
    if request.method == "POST":
        # Always bound on POST, so an empty body shows what is missing. The instance
        # is a copy: the form writes what was typed onto it, and a page re-shown
        # after an error should still name the character as stored.
        form = CharacterForm(request.POST, request.FILES, instance=copy.copy(character))
    else:
        form = CharacterForm(instance=character)
    # Check the files even when a field is wrong, so one round trip names every problem.
    # The web address is fetched last, only once the rest is right: it may take a while.
    if request.method == "POST" and all([form.is_valid(), _check_references(request, form)]):
        fetched = _fetch_reference(form)
        try:
            if form.is_valid():
                return _save_character(request, membership, form, character, fetched)
        finally:
            if fetched is not None:
                fetched.close()
    context = {"membership": membership, "form": form, "character": character}
    return render(request, "characters/character_form.html", context)


def _save_character(
    request: HtmxHttpRequest,
    membership: Membership,
    form: CharacterForm,
    character: Character | None,
    fetched: UploadedFile | None,
) -> HttpResponse:
    fields = {key: form.cleaned_data[key] for key in ("name", "handle", "description")}
    rewritten = 0
    try:
        with transaction.atomic():
            if character is None:
                saved = services.character_create(
                    workspace=membership.workspace, created_by=request.user, **fields
                )
            else:
                saved, rewritten = services.character_update(
                    character=Character.objects.get(pk=character.pk), **fields
                )
    except ValidationError as error:
        field = "handle" if "handle" in getattr(error, "error_dict", {}) else None
        form.add_error(field, error.messages)
        context = {"membership": membership, "form": form, "character": character}
        return render(request, "characters/character_form.html", context)
    files = [*form.cleaned_data["references"], *([fetched] if fetched else [])]
    _, problems = _store_references(request, saved, files, label="")
    for problem in problems:
        messages.error(request, problem)
    if character is None:
        messages.success(request, f"{saved.name} joined the library as @{saved.handle}.")
    elif saved.handle != character.handle:
        messages.success(
            request, f"Handle changed; {rewritten} scene{pluralize(rewritten)} updated."
        )
    else:
        messages.success(request, "Character saved.")
    return redirect(saved)


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
    if not form.is_valid():
        return _detail_with_upload_errors(request, membership, character, form)
    files, url = form.cleaned_data["references"], form.cleaned_data["reference_url"].strip()
    if not files and not url and not rejected_upload_messages(request):
        messages.error(
            request, "Choose at least one image or clip to upload, or give its web address."
        )
        return redirect(character)
    fetched = _fetch_reference(form)
    if fetched is not None:
        files = [*files, fetched]
    try:
        stored, problems = _store_references(request, character, files, form.cleaned_data["label"])
    finally:
        if fetched is not None:
            fetched.close()
    if stored:
        messages.success(request, f"{stored} reference{pluralize(stored)} added.")
    for problem in problems:
        messages.error(request, problem)
    if form.errors:  # the web address was refused: show why, next to what was typed
        return _detail_with_upload_errors(request, membership, character, form)
    return redirect(character)


def _detail_with_upload_errors(
    request: HtmxHttpRequest, membership: Membership, character: Character, form: AssetUploadForm
) -> HttpResponse:
    context = _detail_context(request, membership, character, upload_form=form)
    return render(request, "characters/character_detail.html", context, status=400)


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
    form = _share_form(request, character, request.POST)
    if form.is_valid():
        try:
            share = services.character_share(
                character=character,
                workspace_slug=form.cleaned_data["slug"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(form.used_field, error)
        else:
            messages.success(
                request, f"{character.name} is now shared with {share.workspace.name}."
            )
            return redirect(character)
    context = _detail_context(request, membership, character, share_form=form)
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
