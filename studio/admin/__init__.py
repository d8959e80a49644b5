"""Admin for workspaces, members and the production domain; the take list is the review queue.

Django's autodiscovery imports this package, and each module registers its own admin:
production (workspaces, members, series, episodes, scenes), takes (the review queue) and
jobs (the engine's jobs, shown with the take each one made). Takes and jobs open to staff
through a workspace role, not through Django's model permissions (studio.admin.access).
"""

from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import redirect

from studio.admin import jobs, production, takes  # noqa: F401 - each registers its admin
from studio.admin.access import studio_review_url

admin.site.site_header = "Castboard admin"
admin.site.site_title = "Castboard admin"
admin.site.index_title = "Review and operations"
# Two apps need no sidebar of their own (the index lists them): its 300 px are what the take
# list needs to show Cost, Review, Selected and Created at without a sideways scroll.
admin.site.enable_nav_sidebar = False

_admin_login = admin.site.login


def _login(request, extra_context=None) -> HttpResponse:
    """The admin's login page, except that a member who may review but is not staff (every
    workspace's owner) is sent to the studio's review board instead of being told they are
    "not authorized". Set on the default site's instance: settings keep django.contrib.admin."""
    if request.method == "GET" and (board := studio_review_url(request)):
        return redirect(board)
    return _admin_login(request, extra_context)


admin.site.login = _login
