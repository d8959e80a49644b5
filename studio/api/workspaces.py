"""Workspaces: the one a token belongs to, with the caller's role and its series count."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Router, Schema

from studio.api.common import token_of
from studio.models import Workspace

router = Router(tags=["Workspaces"])


class WorkspaceOut(Schema):
    slug: str
    name: str
    role: str
    series_count: int
    created_at: datetime


def _out(workspace: Workspace, role: str) -> WorkspaceOut:
    return WorkspaceOut(
        slug=workspace.slug,
        name=workspace.name,
        role=role,
        series_count=workspace.series.count(),
        created_at=workspace.created_at,
    )


@router.get("/workspaces", response=list[WorkspaceOut], summary="The workspaces this token can see")
def workspace_list(request):
    token = token_of(request)
    return [_out(token.workspace, token.role)]


@router.get("/workspaces/{slug}", response=WorkspaceOut, summary="One workspace")
def workspace_detail(request, slug: str):
    token = token_of(request)
    if token.workspace.slug != slug:
        raise Http404
    return _out(token.workspace, token.role)
