"""Engine endpoints outside any workspace: provider webhooks and signed files for providers.

A token authenticates each request. A workspace's provider account pages are the studio's
(studio/views/providers.py).
"""

from __future__ import annotations

from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs import services
from jobs.models import ProviderAccount
from jobs.signing import name_from_token

MAX_WEBHOOK_BYTES = 256 * 1024


@csrf_exempt  # providers cannot send our CSRF token; the signature authenticates instead
@require_POST
def webhook(request: HttpRequest, token: str) -> HttpResponse:
    account = get_object_or_404(ProviderAccount, webhook_token=token, enabled=True)
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "Body too large."}, status=413)
    status, message = services.webhook_receive(
        account=account, headers=dict(request.headers), body=request.body
    )
    return JsonResponse({"message": message}, status=status)


@require_GET
def public_file(request: HttpRequest, token: str) -> HttpResponse:
    """A stored file for a provider that fetches it by URL; the signed token is the access."""
    try:
        name = name_from_token(token)
    except signing.BadSignature:
        raise Http404 from None
    if not default_storage.exists(name):
        raise Http404
    return FileResponse(default_storage.open(name, "rb"))
