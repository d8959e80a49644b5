"""Which requests are rate limited, at what rates, and what a refused one gets.

Paid or network-heavy actions (generating takes, importing references from the web) are
limited per user and per workspace; sign-in failures per account name at an address,
per address, and per account name. A refusal is a 429 with Retry-After: a page or form
saying in plain words how long to wait (a form keeps what was typed), or, for htmx, the
message shown in place.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme

from studio.models import ApiToken, Membership
from studio.project import ratelimit
from studio.project.ratelimit import Rate, Refusal

GENERATE = "generate"
IMPORT = "import"


def rate(setting: str) -> Rate:
    return Rate.parse(getattr(settings, setting), setting=setting)


def _actor(request: HttpRequest, membership: Membership | ApiToken) -> str:
    """Whom a per-user limit counts: the signed-in user, or the owner an API token acts for
    (an API request signs nobody in, so its request.user is anonymous)."""
    if isinstance(membership, ApiToken):
        return str(membership.created_by_id)
    return str(request.user.pk)


def _per_user_and_workspace(
    request: HttpRequest, membership: Membership | ApiToken, name: str
) -> Refusal | None:
    setting = f"RATE_LIMIT_{name.upper()}"
    for scope, subject, limit in (
        (f"{name}:workspace", str(membership.workspace_id), rate(f"{setting}_WORKSPACE")),
        (f"{name}:user", _actor(request, membership), rate(setting)),
    ):
        refusal = ratelimit.hit(scope, subject, limit)
        if refusal is not None:
            return refusal
    return None


def generate(request: HttpRequest, membership: Membership | ApiToken) -> Refusal | None:
    """Count a request that makes takes (one take or a whole episode's)."""
    return _per_user_and_workspace(request, membership, GENERATE)


def reference_import(request: HttpRequest, membership: Membership | ApiToken) -> Refusal | None:
    """Count an import of a reference from a web address (the server fetches it)."""
    return _per_user_and_workspace(request, membership, IMPORT)


def generate_refused(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    scope = "this workspace" if refusal.what.endswith(":workspace") else "you"
    return too_many(
        request,
        refusal,
        f"That is more takes than {scope} may start in a short while; nothing was made or "
        f"charged. Try again in {refusal.wait_in_words}.",
    )


def import_refused_message(refusal: Refusal) -> str:
    return (
        "Too many imports from web addresses in a short while; nothing was fetched. "
        f"Try again in {refusal.wait_in_words}."
    )


def too_many(request: HttpRequest, refusal: Refusal, message: str) -> HttpResponse:
    """429 with Retry-After: htmx shows the message in place; a page says it in full."""
    if getattr(request, "htmx", False):
        messages.error(request, message)
        body = render_to_string("includes/messages.html", {"oob": True}, request)
        response = HttpResponse(body, status=429)
        response["HX-Reswap"] = "none"  # keep the page as it is; the message swaps in
    else:
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
            back = ""
        response = render(request, "429.html", {"message": message, "back": back}, status=429)
    response["Retry-After"] = refusal.retry_after_header
    return response


def mark_refused(request: HttpRequest, refusal: Refusal) -> None:
    """For a view that shows a refusal inside its own form: the response becomes a 429."""
    request.rate_limit_refusal = refusal


class RefusalMiddleware:
    """A form re-shown because of a rate limit answers 429 with Retry-After (see mark_refused)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        refusal: Refusal | None = getattr(request, "rate_limit_refusal", None)
        if refusal is not None and not 300 <= response.status_code < 400:
            response.status_code = 429
            response["Retry-After"] = refusal.retry_after_header
        return response


# --- Signing in ---------------------------------------------------------------------------------


def _login_limits(username: str, address: str) -> list[tuple[str, str, Rate]]:
    name = username.strip().lower()
    return [
        ("login:account-address", f"{name}@{address}", rate("RATE_LIMIT_LOGIN")),
        ("login:address", address, rate("RATE_LIMIT_LOGIN_ADDRESS")),
        ("login:account", name, rate("RATE_LIMIT_LOGIN_ACCOUNT")),
    ]


def client_address(request: HttpRequest) -> str:
    header = settings.CLIENT_IP_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def login_refused(request: HttpRequest, username: str) -> Refusal | None:
    """Whether sign-ins for this name from this address are held back now (before the
    password is even checked, so guessing stops)."""
    for scope, subject, limit in _login_limits(username, client_address(request)):
        refusal = ratelimit.refused(scope, subject, limit)
        if refusal is not None:
            return refusal
    return None


def login_failed(request: HttpRequest, username: str) -> None:
    for scope, subject, limit in _login_limits(username, client_address(request)):
        ratelimit.hit(scope, subject, limit)


def login_succeeded(request: HttpRequest, username: str) -> None:
    """A right password clears this name's failures at this address (not the others)."""
    scope, subject, _ = _login_limits(username, client_address(request))[0]
    ratelimit.clear(scope, subject)
