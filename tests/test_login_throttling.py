"""Guessing passwords stops: an account is locked on an address after repeated failures,
on the studio's login and Django admin's alike, until a command unlocks it."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import PASSWORD

LOGIN_PAGES = [reverse("login"), reverse("admin:login")]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Dozens of password checks: the slow production hasher would only add minutes here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _fail(client: Client, url: str, username: str, times: int, **extra) -> list[int]:
    data = {"username": username, "password": "wrong-guess"}
    return [client.post(url, data, **extra).status_code for _ in range(times)]


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_repeated_failures_lock_the_account_on_that_address(editor, url):
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    statuses = _fail(client, url, editor.username, limit)
    assert statuses[:-1] == [200] * (limit - 1) and statuses[-1] == 429
    locked = client.post(url, {"username": editor.username, "password": PASSWORD})
    html = locked.content.decode()
    assert locked.status_code == 429
    assert "Too many failed logins" in html and "axes_reset_username" in html
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username=editor.username).failures_since_start == limit + 1


def test_the_same_account_from_another_address_can_still_log_in(editor):
    _fail(Client(), reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT)
    other = Client(REMOTE_ADDR="10.0.0.9")
    response = other.post(reverse("login"), {"username": editor.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("agents:list")
    assert other.session["_auth_user_id"] == str(editor.pk)


def test_other_accounts_on_the_same_address_are_not_locked(editor, viewer):
    client = Client()
    _fail(client, reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT)
    response = client.post(reverse("login"), {"username": viewer.username, "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(viewer.pk)


def test_the_reset_command_unlocks_the_account(editor):
    client = Client()
    _fail(client, reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT)
    call_command("axes_reset_username", editor.username)
    response = client.post(reverse("login"), {"username": editor.username, "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(editor.pk)
    assert not AccessAttempt.objects.filter(username=editor.username).exists()


@override_settings(CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_behind_a_proxy_the_forwarded_address_is_counted(editor):
    client = Client(REMOTE_ADDR="10.0.0.1")  # the proxy, the same for everyone
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}  # what the proxy appended
    _fail(client, reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT, **forwarded)
    assert AccessAttempt.objects.get(username=editor.username).ip_address == "203.0.113.7"
    elsewhere = {"HTTP_X_FORWARDED_FOR": "198.51.100.4"}
    data = {"username": editor.username, "password": PASSWORD}
    assert client.post(reverse("login"), data, **elsewhere).status_code == 302


@override_settings(CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_a_made_up_forwarded_address_cannot_escape_the_lockout(editor):
    """The client writes whatever it likes before the proxy's entry: a new address per guess."""
    client = Client(REMOTE_ADDR="10.0.0.1")
    limit = settings.AXES_FAILURE_LIMIT
    data = {"username": editor.username, "password": "wrong-guess"}
    statuses = [
        client.post(
            reverse("login"), data, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7"
        ).status_code
        for n in range(limit + 2)
    ]
    assert statuses[: limit - 1] == [200] * (limit - 1) and set(statuses[limit - 1 :]) == {429}
    right = {"username": editor.username, "password": PASSWORD}
    locked = client.post(reverse("login"), right, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7")
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    attempt = AccessAttempt.objects.get(username=editor.username)
    assert attempt.ip_address == "203.0.113.7" and attempt.failures_since_start == limit + 3


@override_settings(CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR", TRUSTED_PROXY_COUNT=2)
def test_two_trusted_proxies_count_the_address_the_outer_one_saw(editor):
    client = Client(REMOTE_ADDR="10.0.0.1")  # a CDN, then a load balancer, then the studio
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("login"),
            {"username": editor.username, "password": "wrong-guess"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7, 10.0.0.5",
        )
    assert AccessAttempt.objects.get(username=editor.username).ip_address == "203.0.113.7"
    # A request that skipped a proxy (too few entries) is counted by its own address.
    client.post(
        reverse("login"),
        {"username": "someone", "password": "wrong-guess"},
        HTTP_X_FORWARDED_FOR="203.0.113.8",
    )
    assert AccessAttempt.objects.get(username="someone").ip_address == "10.0.0.1"


def test_a_successful_login_clears_earlier_failures(editor):
    client = Client()
    _fail(client, reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT - 1)
    client.post(reverse("login"), {"username": editor.username, "password": PASSWORD})
    client.logout()
    statuses = _fail(client, reverse("login"), editor.username, settings.AXES_FAILURE_LIMIT - 1)
    assert set(statuses) == {200}


def test_test_clients_still_log_in_with_force_login(editor_client):
    assert editor_client.get(reverse("agents:list")).status_code == 200
