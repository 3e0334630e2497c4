from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

DEMO_LOGINS = [
    ("editor", "editor-demo-2026", "Editor"),
    ("viewer", "viewer-demo-2026", "Viewer"),
]


class Command(BaseCommand):
    help = "Create the demo Editor and Viewer logins and print them (development only)."

    def add_arguments(self, parser: Any) -> None:
        # `make run` passes its HOST:PORT, so the address printed is the one runserver serves.
        parser.add_argument("--host", default="127.0.0.1:8000", help="host:port being served")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo logins are for development; DEBUG is off here.")
        User = get_user_model()
        for username, password, role in DEMO_LOGINS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = True
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        url = f"http://{options['host']}/"
        lines = [f"Memory Studio is starting at {url}"]
        lines += [
            f"  {role:<7} login: {username} / {password}"
            for username, password, role in DEMO_LOGINS
        ]
        width = max(len(line) for line in lines) + 2
        self.stdout.write("=" * width)
        for line in lines:
            self.stdout.write(self.style.SUCCESS(line) if line is lines[0] else line)
        self.stdout.write("=" * width)
