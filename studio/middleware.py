"""Staff login on every page: one gate, so no view can be forgotten."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import reverse

# Django admin guards itself; the login page and static files must stay reachable.
OPEN_PREFIXES = ("/login/", "/admin/", "/" + settings.STATIC_URL.lstrip("/"))


class StaffRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        user = request.user
        if user.is_authenticated and user.is_staff and user.is_active:
            return self.get_response(request)
        if user.is_authenticated:
            return HttpResponseForbidden(
                "Your account is not a staff account, so it cannot open Memory Studio. "
                "Ask an administrator for the Viewer or Editor role."
            )
        if getattr(request, "htmx", False):
            # htmx follows HX-Redirect, so an expired session lands on the login page.
            response = HttpResponseForbidden("Your session has ended. Log in again.")
            response["HX-Redirect"] = f"{reverse('login')}?next={request.path}"
            return response
        return redirect_to_login(request.get_full_path())
