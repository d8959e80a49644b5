"""Signing in, with failed attempts throttled (studio.throttles)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from studio import throttles


class ThrottledLoginView(auth_views.LoginView):
    """Django's login, held back after repeated failures for a name at an address.

    While held back, the password is not even checked: a 429 with Retry-After, the form
    with the name as typed and a plain message saying how long to wait.
    """

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        refusal = throttles.login_refused(request, username)
        if refusal is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form()
        form.errors.clear()
        form.add_error(
            None,
            "Too many failed sign-ins for this account from here. "
            f"Try again in {refusal.wait_in_words}.",
        )
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = refusal.retry_after_header
        return response

    def form_invalid(self, form) -> HttpResponse:
        throttles.login_failed(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form) -> HttpResponse:
        throttles.login_succeeded(self.request, form.get_user().get_username())
        return super().form_valid(form)
