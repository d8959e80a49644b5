"""Home, the workspace dashboard, creating a workspace, and its members."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio import services
from studio.access import member_for, membership_for, require
from studio.dashboard import IN_PROGRESS_ID, ended_work_of, in_progress
from studio.forms import MemberAddForm, MemberRoleForm, WorkspaceForm
from studio.http import HTMX_STOP_POLLING, HtmxHttpRequest
from studio.models import Membership
from studio.selectors import workspace_dashboard


@login_required
@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    """Send the user to their most recent workspace, or offer to create one."""
    last = request.session.get("workspace")
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    chosen = next((m for m in memberships if m.workspace.slug == last), None) or memberships.first()
    if chosen is None:
        return redirect("workspace_create")
    return redirect("dashboard", chosen.workspace.slug)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: HtmxHttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workspace = services.workspace_create(
            name=form.cleaned_data["name"], slug=form.cleaned_data["slug"], owner=request.user
        )
        messages.success(request, f"Workspace {workspace.name} created. You are its owner.")
        return redirect("dashboard", workspace.slug)
    return render(request, "studio/workspace_form.html", {"form": form})


def _shown(value: str) -> set[int]:
    """The take ids a polling block says it showed ("3,7,12"); anything else is ignored."""
    return {int(part) for part in value.split(",") if part.isdigit()}


@login_required
@require_GET
def dashboard(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The workspace's work at a glance. Its in-progress block polls this same view (htmx,
    targeting #in-progress) for itself alone, and for the sections a finished take changes
    once one has left it; 286 stops the polling when nothing is in progress."""
    membership = membership_for(request.user, slug)
    workspace = membership.workspace
    polled = (
        request.htmx
        and request.htmx.target == IN_PROGRESS_ID
        and not request.htmx.history_restore_request
    )
    if polled:
        work = in_progress(workspace, now=timezone.now())
        context: dict[str, object] = {"membership": membership, "in_progress": work}
        if work.moved_on(shown=_shown(request.GET.get("shown", ""))):
            context |= {"refresh": True, **ended_work_of(workspace)}
        response = render(request, "studio/dashboard.html#poll", context)
        if not work.count:
            response.status_code = HTMX_STOP_POLLING
    else:
        if request.session.get("workspace") != slug:  # a session write only when it changes
            request.session["workspace"] = slug
        context = {"membership": membership, **workspace_dashboard(workspace=workspace)}
        response = render(request, "studio/dashboard.html", context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])  # one URL, two answers
    return response


@login_required
@require_http_methods(["GET", "POST"])
def members(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST":
        require(membership, "manage")
        if form.is_valid():
            try:
                added = services.member_add(
                    workspace=membership.workspace,
                    username_or_email=form.cleaned_data["username_or_email"],
                    role=form.cleaned_data["role"],
                )
            except ValidationError as error:
                form.add_error("username_or_email", error)
            else:
                messages.success(request, f"{added.user.get_username()} joined as {added.role}.")
                return redirect("members", slug)
    context = {
        "membership": membership,
        "form": form,
        "members": membership.workspace.memberships.select_related("user").order_by(
            "user__username"
        ),
        "role_form": MemberRoleForm(),
    }
    return render(request, "studio/members.html", context)


@login_required
@require_POST
def member_role(request: HtmxHttpRequest, slug: str, member_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    member = member_for(membership, member_id)
    form = MemberRoleForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.member_change_role(membership=member, role=form.cleaned_data["role"])
        except ValidationError as problem:
            error = problem.messages[0]
    else:
        error = "Choose one of the roles."
    if request.htmx:
        member.refresh_from_db()
        context = {"membership": membership, "member": member, "error": error}
        return render(request, "studio/members.html#member-row", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{member.user.get_username()} is now {member.role}.")
    return redirect("members", slug)


@login_required
@require_POST
def member_remove(request: HtmxHttpRequest, slug: str, member_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    member = member_for(membership, member_id)
    try:
        services.member_remove(membership=member)
    except ValidationError as problem:
        messages.error(request, problem.messages[0])
    else:
        messages.success(request, f"{member.user.get_username()} was removed.")
        if member.user_id == request.user.pk:
            return redirect("home")
    return redirect("members", slug)
