"""`manage.py demo_logins` (studio.devtools) and the address `make run` has it print."""

from __future__ import annotations

import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def test_it_prints_the_address_it_is_given_and_the_logins(db, settings):
    settings.DEBUG = True
    out = StringIO()
    call_command("demo_logins", "--host", "0.0.0.0:8123", stdout=out)
    printed = out.getvalue()
    assert "Memory Studio is starting at http://0.0.0.0:8123/" in printed
    assert "8000" not in printed
    assert "editor / editor-demo-2026" in printed
    editor = get_user_model().objects.get(username="editor")
    assert editor.is_staff and editor.check_password("editor-demo-2026")
    assert [group.name for group in editor.groups.all()] == ["Editor"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_passes_its_host_and_port_to_the_printed_address():
    # -n prints the recipe without running it: the demo_logins line must carry HOST and PORT.
    recipe = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=8123"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in recipe.splitlines() if "demo_logins" in line]
    assert line.endswith("demo_logins --host 0.0.0.0:8123")
    assert "runserver 0.0.0.0:8123" in recipe
