from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from studio.health import healthz

urlpatterns = [
    path("", include("agents.urls")),
    path("", include("memories.urls")),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

handler400 = "studio.responses.refused_request"
handler403 = "studio.responses.permission_denied"
