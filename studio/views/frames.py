"""The pictures a scene's video starts from and ends on: upload, replace, remove, view."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from characters.uploads import rejected_upload_messages
from studio import services
from studio.access import membership_for, require, scene_for
from studio.http import HtmxHttpRequest, serve_stored_file
from studio.models import SceneFrame


def _position(position: str) -> SceneFrame.Position:
    if position not in SceneFrame.Position.values:
        raise Http404
    return SceneFrame.Position(position)


@login_required
@require_POST
def scene_frame(request: HtmxHttpRequest, slug: str, scene_id: int, position: str) -> HttpResponse:
    """Set (upload `picture`) or, with `remove`, forget the scene's first or last picture."""
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    require(membership, "edit")
    where = _position(position)
    said = f"the picture the scene {where.label.lower()}"
    if request.POST.get("remove"):
        if services.scene_frame_remove(scene=scene, position=where):
            messages.success(request, f"Removed {said}.")
    else:
        problems = rejected_upload_messages(request, "picture")
        upload = request.FILES.get("picture")
        if upload is None and not problems:
            problems = ["Choose a picture to upload."]
        if upload is not None:
            try:
                services.scene_frame_set(scene=scene, position=where, upload=upload)
            except ValidationError as error:
                problems += error.messages
            else:
                messages.success(request, f"Saved {upload.name} as {said}.")
        for problem in problems:
            messages.error(request, problem)
    return redirect(reverse("scene_detail", args=[slug, scene.pk]) + "#frames")


@login_required
@require_GET
def scene_frame_file(
    request: HtmxHttpRequest, slug: str, scene_id: int, position: str, variant: str
) -> HttpResponse:
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    frame = get_object_or_404(SceneFrame, scene=scene, position=_position(position))
    if variant == "thumbnail":
        return serve_stored_file(request, frame.thumbnail, content_type="image/jpeg")
    if variant == "original":
        return serve_stored_file(request, frame.file, content_type=frame.content_type)
    raise Http404
