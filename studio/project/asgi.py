"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.project.settings")
application = get_asgi_application()

from studio.project.startup import require_secrets, warm_up  # noqa: E402 - needs the apps loaded

require_secrets()
warm_up()
