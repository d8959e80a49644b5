"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.project.settings")
application = get_wsgi_application()

from studio.project.startup import require_secrets, warm_up  # noqa: E402 - needs the apps loaded

require_secrets()
warm_up()

from studio.project.heap import freeze_startup_objects  # noqa: E402 - needs the apps loaded

freeze_startup_objects()
