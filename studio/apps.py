from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from studio import storage_cleanup  # noqa: F401 - files leave storage with their rows
        from studio.project import startup  # noqa: F401 - registers the deploy check of the keys
