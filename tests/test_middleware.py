"""The request gates answer strangers safely: encoded redirects, the policy on error pages,
and JSON for programs when the database is down."""

from __future__ import annotations

from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections
from django.test import Client, override_settings
from django.urls import reverse

HTMX = {"HTTP_HX_REQUEST": "true"}
CRLF_PATHS = [
    "/agents/x%0d%0aSet-Cookie:%20planted=1/",
    "/%0d%0aLocation:%20https://evil.example/",
    "/audit/%0a%0d?user_id=%0d%0a",
]


def _assert_safe(response) -> None:
    body = response.content.decode(errors="replace")
    assert 300 <= response.status_code < 500, response.status_code
    assert settings.SECRET_KEY not in body
    assert "SECRET_KEY" not in body and "Traceback" not in body
    for name, value in response.items():
        assert "\r" not in value and "\n" not in value, name
    assert "planted" not in response.cookies


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", CRLF_PATHS)
def test_a_path_holding_crlf_is_redirected_to_login_encoded(db, debug, path):
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        page = client.get(path)
        htmx = client.get(path, **HTMX)
    _assert_safe(page)
    _assert_safe(htmx)
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert htmx.status_code == 403 and htmx["HX-Redirect"].startswith(reverse("login"))
    # The way back is the path itself, percent-encoded: it decodes to what was asked for.
    sent_back = parse_qs(urlsplit(htmx["HX-Redirect"]).query)["next"][0]
    assert sent_back == htmx.wsgi_request.get_full_path()


def test_the_htmx_redirect_keeps_where_the_person_was(db):
    response = Client().get("/audit/?page=2", **HTMX)
    assert response["HX-Redirect"] == "/login/?next=/audit/%3Fpage%3D2"


@pytest.mark.parametrize("debug", [True, False])
def test_error_pages_carry_the_content_security_policy(editor_client, agent, debug):
    with override_settings(DEBUG=debug):
        missing = editor_client.get("/no-such-page/")
        unknown_agent = editor_client.get(reverse("agents:memory_tab", args=["no-such-agent"]))
        refused = Client().get(reverse("agents:list"), **HTMX)
        bad = editor_client.get(reverse("memories:user", args=[agent.slug]))
    for response, status in ((missing, 404), (unknown_agent, 404), (refused, 403), (bad, 400)):
        assert response.status_code == status
        assert "script-src 'self'" in response["Content-Security-Policy"], status


@pytest.mark.parametrize("debug", [True, False])
def test_a_server_error_carries_the_content_security_policy(editor, agent, debug):
    client = Client(raise_request_exception=False)
    client.force_login(editor)
    with (
        override_settings(DEBUG=debug),
        mock.patch("agents.views.runtime.agent_overviews", side_effect=RuntimeError("boom")),
    ):
        response = client.get(reverse("agents:list"))
    assert response.status_code == 500
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_every_page_gets_the_policy_django_csp_builds(editor_client, agent):
    from csp.utils import build_policy

    response = editor_client.get(reverse("agents:list"))
    assert response["Content-Security-Policy"] == build_policy()
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_a_response_with_its_own_policy_goes_through_django_csp(rf):
    from django.http import HttpResponse

    from studio.middleware import ErrorPagesCSPMiddleware

    def view(request):
        response = HttpResponse("ok")
        response._csp_update = {"img-src": ["https://images.example"]}  # what @csp_update sets
        return response

    middleware = ErrorPagesCSPMiddleware(view)
    request = rf.get("/")
    middleware.process_request(request)
    response = middleware.process_response(request, view(request))
    assert "https://images.example" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db(transaction=True)
def test_the_settings_endpoint_answers_json_when_the_database_is_down(agent):
    url = reverse("agents:settings_api", args=[agent.slug])
    connection.close()
    refused = OperationalError('connection to server on socket "/x/.s.PGSQL.5432" failed')
    with mock.patch.object(type(connections["default"]), "get_new_connection", side_effect=refused):
        response = Client().get(url, HTTP_AUTHORIZATION="Bearer whatever")
    connection.close()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "cannot reach its Postgres database" in response.json()["error"]
