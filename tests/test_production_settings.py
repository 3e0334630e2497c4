"""Production is the default: DEBUG off unless turned on, HTTPS, hashed static files served
by whitenoise, and `check --deploy` clean with the environment the README documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings
from django.db import connection

SECRET = "prod-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2


def production_env(**overrides: str) -> dict[str, str]:
    """The README's production environment, pointed at the test database by its socket."""
    s = connection.settings_dict
    # Only the documented variables: the test run's own (DEBUG, DJANGO_ALLOW_ASYNC_UNSAFE) stay out.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="studio.settings",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="studio.example.com",
        CSRF_TRUSTED_ORIGINS="https://studio.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        DATABASE_URL=f"postgres://{s['USER']}@/{s['NAME']}?host={s['HOST']}",
    )
    env.update(overrides)
    return env


def run(code_or_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({"debug": s.DEBUG, "ssl_redirect": s.SECURE_SSL_REDIRECT,
    "hsts": s.SECURE_HSTS_SECONDS, "cookies": s.SESSION_COOKIE_SECURE and s.CSRF_COOKIE_SECURE,
    "proxy": s.SECURE_PROXY_SSL_HEADER, "static": s.STORAGES["staticfiles"]["BACKEND"]}))
"""


def test_debug_is_off_and_https_on_unless_turned_on(db):
    shown = json.loads(run(["-c", SHOW_SETTINGS], production_env()).stdout)
    assert shown == {
        "debug": False,
        "ssl_redirect": True,
        "hsts": 31_536_000,
        "cookies": True,
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
        "static": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    }
    development = json.loads(run(["-c", SHOW_SETTINGS], production_env(DEBUG="True")).stdout)
    assert development["debug"] is True and development["ssl_redirect"] is False
    assert development["static"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_without_debug_a_secret_key_is_required(db):
    env = production_env()
    del env["SECRET_KEY"]
    done = run(["-c", SHOW_SETTINGS], env)
    assert done.returncode != 0 and "Set SECRET_KEY in the environment" in done.stderr


def test_check_deploy_is_clean_with_the_documented_environment(db):
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


SERVE_STATIC = """
import json, sys
from io import BytesIO
from studio.wsgi import application
from django.contrib.staticfiles.storage import staticfiles_storage

def get(path, https=True):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "studio.example.com",
        "SERVER_PORT": "443", "HTTP_HOST": "studio.example.com", "wsgi.input": BytesIO(),
        "wsgi.url_scheme": "https" if https else "http", "HTTP_ACCEPT_ENCODING": "gzip",
        "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1"}
    answer = {}
    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))
    body = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], body

hashed = staticfiles_storage.url("css/studio.css")
status, headers, body = get(hashed)
login_status, _, login_page = get("/login/")
plain_status, plain_headers, _ = get("/login/", https=False)
print(json.dumps({"hashed": hashed, "status": status, "encoding": headers.get("Content-Encoding"),
    "cache": headers.get("Cache-Control"), "gzip": body[:2] == b"\\x1f\\x8b",
    "login": login_status, "linked": hashed in login_page.decode(),
    "plain": plain_status, "plain_to": plain_headers.get("Location")}))
"""


def test_collected_static_files_are_served_hashed_and_compressed(db, tmp_path):
    env = production_env(STATIC_ROOT=str(tmp_path / "static"))
    collected = run(["manage.py", "collectstatic", "--no-input", "-v", "0"], env)
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()
    done = run(["-c", SERVE_STATIC], env)
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["hashed"].startswith("/static/css/studio.") and served["hashed"] != (
        "/static/css/studio.css"
    )
    assert served["status"].startswith("200") and served["encoding"] == "gzip" and served["gzip"]
    assert "immutable" in served["cache"]
    assert served["login"].startswith("200") and served["linked"]
    assert served["plain"].startswith("301")
    assert served["plain_to"] == "https://studio.example.com/login/"


GC_STATE = """
import gc, json
from studio.wsgi import GC_THRESHOLDS, application
print(json.dumps({"thresholds": gc.get_threshold(), "expected": GC_THRESHOLDS,
    "frozen": gc.get_freeze_count()}))
"""


def test_the_served_application_freezes_what_it_loaded_and_collects_less_often(db):
    done = run(["-c", GC_STATE], production_env())
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["thresholds"] == list(state["expected"]) and state["thresholds"][0] > 700
    assert state["frozen"] > 10_000  # the loaded application: modules, URLs, settings
