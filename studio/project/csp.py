"""The Content-Security-Policy header, built from settings shaped as Django 6.0's built-in CSP.

`SECURE_CSP` (enforced) and `SECURE_CSP_REPORT_ONLY` are dicts of directive to sources,
written with the `CSP` constants. `CSP.NONCE` in a directive becomes the request's nonce
(`request._csp_nonce`, as in Django 6) once something read it, and is dropped otherwise; no
page needs one today (every script and style is a static file). Moving to Django 6:
MIDDLEWARE names `django.middleware.csp.ContentSecurityPolicyMiddleware` instead of this
one, settings import `CSP` from `django.utils.csp`, and this file goes (with it the DEBUG
pass for Django's technical error pages, which Django's own middleware does not give).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject, empty

if TYPE_CHECKING:  # settings import this module: it stays light at import time
    from django.http import HttpRequest, HttpResponse


class CSP(StrEnum):
    """Source keywords, quoted as the header needs them, and the nonce's placeholder."""

    HEADER_ENFORCE = "Content-Security-Policy"
    HEADER_REPORT_ONLY = "Content-Security-Policy-Report-Only"

    NONE = "'none'"
    REPORT_SAMPLE = "'report-sample'"
    SELF = "'self'"
    STRICT_DYNAMIC = "'strict-dynamic'"
    UNSAFE_EVAL = "'unsafe-eval'"
    UNSAFE_HASHES = "'unsafe-hashes'"
    UNSAFE_INLINE = "'unsafe-inline'"
    WASM_UNSAFE_EVAL = "'wasm-unsafe-eval'"

    NONCE = "<CSP_NONCE_SENTINEL>"


class LazyNonce(SimpleLazyObject):
    """A request's nonce, made the first time it is read; false until then."""

    def __init__(self) -> None:
        super().__init__(lambda: secrets.token_urlsafe(16))

    def __bool__(self) -> bool:
        return self._wrapped is not empty


Policy = Mapping[str, Sequence[str] | str | bool | None]


def build_policy(config: Policy, nonce: object = None) -> str:
    """The header's value: `True` is a directive without sources (upgrade-insecure-requests),
    `None`/`False` leave one out, and the nonce placeholder goes when no nonce was used."""
    directives = []
    for directive, sources in config.items():
        if sources is None or sources is False:
            continue
        if sources is True:
            directives.append(directive)
            continue
        values = sorted(sources) if isinstance(sources, set) else sources
        values = [values] if isinstance(values, str) else list(values)
        if nonce:
            values = [f"'nonce-{nonce}'" if value == CSP.NONCE else value for value in values]
        else:
            values = [value for value in values if value != CSP.NONCE]
        if values:
            directives.append(f"{directive} {' '.join(values)}")
    return "; ".join(directives)


def get_nonce(request: HttpRequest) -> LazyNonce | None:
    return getattr(request, "_csp_nonce", None)


def storage_origins(*, bucket: str, endpoint_url: str = "", region: str = "") -> list[str]:
    """Where media views redirect players and thumbnails on S3: the bucket's signed URLs,
    path-style on the endpoint's host or virtual-hosted on the bucket's own subdomain."""
    if not bucket:
        return []
    if endpoint_url:
        endpoint = urlsplit(endpoint_url)
        return [
            f"{endpoint.scheme}://{endpoint.netloc}",
            f"{endpoint.scheme}://{bucket}.{endpoint.netloc}",
        ]
    hosts = ["s3.amazonaws.com"] + ([f"s3.{region}.amazonaws.com"] if region else [])
    origins = [f"https://{bucket}.{host}" for host in hosts]
    if "." in bucket:  # a dotted name breaks TLS on a subdomain: boto3 goes path-style
        origins += [f"https://{host}" for host in hosts]
    return origins


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds the policies of settings to every response that does not set its own."""

    def process_request(self, request: HttpRequest) -> None:
        request._csp_nonce = LazyNonce()

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # With DEBUG, Django answers an exception with its technical page, whose inline
        # styles and scripts no strict policy allows; it never reaches production.
        if settings.DEBUG and not isinstance(exception, PermissionDenied):
            request._csp_debug_page = True

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, "_csp_debug_page", False):
            return response
        nonce = get_nonce(request)
        for header, config in (
            (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
            (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
        ):
            # A view that sets its own policy keeps it.
            if config and header not in response:
                response.headers[str(header)] = build_policy(config, nonce)
        return response
