from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Holds the development commands (seed_demo, demo_logins, benchmark, load_run)."""

    name = "studio.devtools"
    label = "devtools"
    verbose_name = "Development tools"
