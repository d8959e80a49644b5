"""Admin for workspaces, members and the production domain; the take list is the review queue.

Django's autodiscovery imports this package, and each module registers its own admin:
production (workspaces, members, series, episodes, scenes), takes (the review queue) and
jobs (the engine's jobs, shown with the take each one made). Takes and jobs open to staff
through a workspace role, not through Django's model permissions (studio.admin.access).
"""

from django.contrib import admin

from studio.admin import jobs, production, takes  # noqa: F401 - each registers its admin

admin.site.site_header = "Castboard admin"
admin.site.site_title = "Castboard admin"
admin.site.index_title = "Review and operations"
