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

from characters import services, voices
from characters.forms import AssetUploadForm, CharacterForm, ShareForm
from characters.models import Character, CharacterShare, ReferenceAsset
from characters.selectors import (
    character_library,
    character_registrations,
    character_versions,
    share_destinations,
    share_offers_for,
    share_received,
    shares_of,
)
from characters.uploads import rejected_upload_messages
from jobs.models import ProviderAccount
from studio import throttles
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
    # Only owners answer offers, so only they are shown them.
    offers = share_offers_for(workspace=membership.workspace) if membership.can_manage else []
    context = {
        "membership": membership,
        "own": own,
        "shared": shared,
        "offers": offers,
        # To warn before accepting a handle the library already uses.
        "own_handles": {character.handle for character in own},
        "shared_handles": {character.handle for character in shared},
    }
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
    request: HtmxHttpRequest,
    membership: Membership,
    character: Character,
    voice: dict | None = None,
    **extra: object,
) -> dict:
    owned = character.workspace_id == membership.workspace_id
    can_change = owned and membership.can_edit
    context = {
        "membership": membership,
        "character": character,
        "owned": owned,
        "can_change": can_change,
        "assets": ReferenceAsset.current.filter(character=character),
        "versions": character_versions(character=character),
        "registrations": character_registrations(
            character=character, workspace=membership.workspace
        ),
        "shares": shares_of(character=character) if owned else [],
        # Receiving owners may take a shared character out of their library.
        "received_share": (
            share_received(character=character, workspace=membership.workspace)
            if not owned and membership.can_manage
            else None
        ),
        "scenes": character.scenes.filter(episode__series__workspace=membership.workspace)
        .select_related("episode__series__workspace")
        .order_by("episode__series__title", "episode__number", "position"),
        "upload_form": None,
        "share_form": None,
        **(voice or _voice_context(membership, character, None, can_change=can_change)),
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


def _fetch_reference(
    request: HtmxHttpRequest, membership: Membership, form: CharacterForm | AssetUploadForm
) -> UploadedFile | None:
    """The checked file at the form's web address, if one was given.

    A refusal becomes an error on the address field, so the page shows it next to
    what was typed; one by the import rate limit also makes the answer a 429.
    """
    url = form.cleaned_data.get("reference_url", "").strip()
    if not url:
        return None
    if refusal := throttles.reference_import(request, membership):
        throttles.mark_refused(request, refusal)
        form.add_error("reference_url", throttles.import_refused_message(refusal))
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
        fetched = _fetch_reference(request, membership, form)
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
                    character=Character.objects.get(pk=character.pk),
                    updated_by=request.user,
                    **fields,
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
    fetched = _fetch_reference(request, membership, form)
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
    asset = asset_for(character, asset_id)
    if asset.retired_at is not None:  # kept for an older version only: nothing to remove
        raise Http404
    services.asset_delete(asset=asset, deleted_by=request.user)
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
                offered_by=request.user,
            )
        except ValidationError as error:
            form.add_error(form.used_field, error)
        else:
            if share.status == CharacterShare.Status.ACCEPTED:  # the sender owns it there too
                messages.success(
                    request, f"{character.name} is now shared with {share.workspace.name}."
                )
            else:
                # The same words whether or not a workspace has this slug.
                messages.success(
                    request,
                    f"Offered to “{share.offered_slug}”: waiting for its owners to accept.",
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
    if share.status == CharacterShare.Status.ACCEPTED:
        messages.success(request, f"{share.workspace.name} can no longer use {character.name}.")
    elif share.status == CharacterShare.Status.OFFERED:
        messages.success(request, f"The offer to “{share.offered_slug}” was withdrawn.")
    else:
        messages.success(
            request,
            f"{share.workspace.name} was taken off the list; you can offer {character.name} again.",
        )
    return redirect(character)


def _offer_for(membership: Membership, share_id: int) -> CharacterShare:
    """An offer made to the member's workspace, for its owners to answer (403 for others).

    Answered offers are found too, so a second click is told what happened.
    """
    share = (
        CharacterShare.objects.select_related("character__workspace")
        .filter(pk=share_id, workspace=membership.workspace)
        .first()
    )
    if share is None:
        raise Http404
    require(membership, "manage")
    return share


def _answer_offer(
    request: HtmxHttpRequest, slug: str, share_id: int, *, accept: bool
) -> HttpResponse:
    membership = membership_for(request.user, slug)
    share = _offer_for(membership, share_id)
    character = share.character
    try:
        if accept:
            services.share_accept(share=share, accepted_by=request.user)
        else:
            services.share_decline(share=share, declined_by=request.user)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        if accept:
            messages.success(
                request,
                f"{character.name} from {character.workspace.name} is in your library: "
                f"mention it as @{character.handle}.",
            )
        else:
            messages.success(
                request, f"You declined {character.name} from {character.workspace.name}."
            )
    return redirect("character_list", slug)


@login_required
@require_POST
def share_accept(request: HtmxHttpRequest, slug: str, share_id: int) -> HttpResponse:
    """A receiving owner accepts a character offered to their workspace."""
    return _answer_offer(request, slug, share_id, accept=True)


@login_required
@require_POST
def share_decline(request: HtmxHttpRequest, slug: str, share_id: int) -> HttpResponse:
    """A receiving owner declines a character offered to their workspace."""
    return _answer_offer(request, slug, share_id, accept=False)


@login_required
@require_GET
def share_offer_picture(request: HtmxHttpRequest, slug: str, share_id: int) -> HttpResponse:
    """The offered character's first image, for the owners deciding whether to accept it.

    Served here rather than through asset_file: until they accept, the character is
    not theirs to open.
    """
    membership = membership_for(request.user, slug)
    share = _offer_for(membership, share_id)
    if share.status != CharacterShare.Status.OFFERED:
        raise Http404
    images = ReferenceAsset.current.filter(
        character=share.character, kind=ReferenceAsset.Kind.IMAGE
    )
    image = images.order_by("created_at", "pk").first()
    if image is None:
        raise Http404
    return serve_stored_file(request, image.thumbnail, content_type="image/jpeg")


@login_required
@require_POST
def share_remove(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    """A receiving owner takes a shared character out of their library."""
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id)
    share = share_received(character=character, workspace=membership.workspace)
    if share is None:  # one of the workspace's own characters: delete it instead
        raise Http404
    require(membership, "manage")
    try:
        services.share_remove(share=share, removed_by=request.user)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(
            request,
            f"{character.name} is no longer in this library; scenes that mention "
            f"@{character.handle} will need another character before they generate.",
        )
    return redirect("character_list", slug)


# --- The character's voice -----------------------------------------------------------------


def _voice_context(
    membership: Membership,
    character: Character,
    account: ProviderAccount | None,
    *,
    can_change: bool,
    listing: voices.VoiceList | None = None,
    typed: dict | None = None,
    problems: dict | None = None,
) -> dict:
    """The voice section: the speech accounts to choose from, the one chosen (the voice's,
    else the first), its voices once listed, and what was typed with its problems."""
    current = character.versions.select_related("voice_account").order_by("-number").first()
    accounts = voices.speech_accounts(workspace=membership.workspace) if can_change else []
    if account is None and accounts:
        voiced = current.voice_account_id if current else None
        account = next((a for a in accounts if a.pk == voiced), accounts[0])
    typed = typed or {}
    picked = typed.get("voice_id") or (
        current.voice_id
        if current and current.voice_account_id == getattr(account, "pk", 0)
        else ""
    )
    return {
        "voice_version": current,
        "voice_accounts": accounts,
        "voice_account": account,
        "voice_listing": listing,
        "voice_picked": picked,
        "voice_typed": typed.get("typed_voice_id", ""),
        "voice_problems": problems or {},
    }


def _voice_account_for(membership: Membership, raw: str | None) -> ProviderAccount | None:
    """The account named by id among the workspace's; another workspace's is a 404."""
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404
    try:
        return ProviderAccount.objects.get(pk=int(raw), workspace=membership.workspace)
    except ProviderAccount.DoesNotExist:
        raise Http404 from None


def _save_voice(
    request: HtmxHttpRequest, character: Character, account: ProviderAccount | None
) -> str:
    """Remove, sample or choose, as the form asks; a success message or a ValidationError."""
    if "remove" in request.POST:
        voices.character_voice_clear(character=character)
        return f"{character.name} has no voice now."
    if account is None:
        raise ValidationError({"account": "Choose the text-to-speech account that speaks."})
    rejected = rejected_upload_messages(request, "sample")
    if rejected:
        raise ValidationError({"sample": rejected})
    upload = request.FILES.get("sample")
    if upload is not None:
        voices.character_voice_sample(character=character, account=account, upload=upload)
        return f"{character.name} will speak in a voice {account.name} makes from the sample."
    voice_id = request.POST.get("typed_voice_id", "").strip() or request.POST.get("voice_id", "")
    version = voices.character_voice_choose(character=character, account=account, voice_id=voice_id)
    return f"{character.name} speaks in {version.voice_name} ({account.name})."


@login_required
@require_http_methods(["GET", "POST"])
def character_voice(request: HtmxHttpRequest, slug: str, character_id: int) -> HttpResponse:
    """GET: the account's voices to pick from (htmx: the list alone; else the page with it).
    POST: the character's current version speaks in the voice picked, typed or sampled."""
    membership = membership_for(request.user, slug)
    character = character_for(membership, character_id, shared=False)
    require(membership, "edit")
    data = request.POST if request.method == "POST" else request.GET
    account = _voice_account_for(membership, data.get("account"))
    if request.method == "POST":
        try:
            said = _save_voice(request, character, account)
        except ValidationError as error:
            problems = error.message_dict
        else:
            messages.success(request, said)
            return redirect(f"{character.get_absolute_url()}#voice")
        listing = voices.voice_list(account) if account is not None else None
        voice = _voice_context(
            membership,
            character,
            account,
            can_change=True,
            listing=listing,
            typed=data.dict(),
            problems=problems,
        )
        context = _detail_context(request, membership, character, voice)
        return render(request, "characters/character_detail.html", context, status=400)
    listing = voices.voice_list(account) if account is not None else None
    voice = _voice_context(membership, character, account, can_change=True, listing=listing)
    if request.htmx:
        return render(request, "characters/character_detail.html#voice-choices", voice)
    context = _detail_context(request, membership, character, voice)
    return render(request, "characters/character_detail.html", context)
