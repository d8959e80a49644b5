"""Admin for workspaces, members and the production domain; the take list is the review queue.

Django's autodiscovery imports this package, and each module registers its own admin:
production (workspaces, members, series, episodes, scenes), takes (the review queue) and
jobs (the engine's jobs, shown with the take each one made). Takes and jobs open to staff
through a workspace role, not through Django's model permissions (studio.admin.access).
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from studio.admin import jobs, production, takes  # noqa: F401 - each registers its admin
from studio.admin.access import studio_review_url
from studio.views.auth import ThrottledLoginView

admin.site.site_header = "Castboard admin"
admin.site.site_title = "Castboard admin"
admin.site.index_title = "Review and operations"
# Two apps need no sidebar of their own (the index lists them): its 300 px are what the take
# list needs to show Cost, Review, Selected and Created at without a sideways scroll.
admin.site.enable_nav_sidebar = False


class AdminLoginView(ThrottledLoginView):
    """The studio's throttled sign-in on the admin's page and form. A signed-in member who
    is not staff stays on it, to read that they are not authorized (redirecting them to
    where they came from would send them straight back)."""

    redirect_authenticated_user = False


@never_cache
def _login(request, extra_context=None) -> HttpResponse:
    """The admin's login page (Django's AdminSite.login, with its context), except that:

    * a member who may review but is not staff (every workspace's owner) is sent to the
      studio's review board instead of being told they are "not authorized";
    * failed sign-ins are held back as the studio's are, on the same counts
      (studio.throttles): Django's own view lets a guesser try passwords without end.

    Set on the default site's instance: settings keep django.contrib.admin."""
    site = admin.site
    if request.method == "GET" and (board := studio_review_url(request)):
        return redirect(board)
    if request.method == "GET" and site.has_permission(request):
        return redirect(reverse("admin:index", current_app=site.name))
    context = {
        **site.each_context(request),
        "title": _("Log in"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    context.update(extra_context or {})
    request.current_app = site.name
    view = AdminLoginView.as_view(
        extra_context=context,
        authentication_form=site.login_form or AdminAuthenticationForm,
        template_name=site.login_template or "admin/login.html",
    )
    return view(request)


admin.site.login = _login
