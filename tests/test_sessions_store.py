"""studio/sessions.py: Django's database sessions, read with raw SQL, behave as Django's."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from studio.sessions import SessionStore


def test_a_saved_session_reads_back(db):
    store = SessionStore()
    store["seen"] = "yes"
    store.create()
    assert SessionStore(store.session_key).load() == {"seen": "yes"}


def test_an_expired_session_is_not_read_and_forgets_its_key(db):
    store = SessionStore()
    store["seen"] = "yes"
    store.create()
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    again = SessionStore(store.session_key)
    assert again.load() == {}
    assert again.session_key is None


def test_a_cookie_that_is_not_a_session_key_reads_nothing(db):
    assert SessionStore("x\x00y' OR 1=1 --").load() == {}


def test_logging_out_ends_the_session_for_every_page(editor_client, agent):
    assert editor_client.get(reverse("agents:list")).status_code == 200
    editor_client.post(reverse("logout"))
    assert not Session.objects.exists()
    assert editor_client.get(reverse("agents:list")).status_code == 302


def test_a_session_cookie_holding_a_nul_byte_is_a_login_page_not_a_500(client, db):
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    response = client.get(reverse("agents:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
