from django.urls import path

from agents import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list, name="list"),
    path("discover/", views.discover_agents, name="discover"),
    path("discover/register/", views.register_discovered, name="register_discovered"),
    path("agents/<slug:slug>/", views.memory_tab, name="memory_tab"),
    path("agents/<slug:slug>/settings/", views.update_memory_settings, name="update_settings"),
    path("agents/<slug:slug>/recent/", views.recent_memories, name="recent"),
    path("agents/<slug:slug>/bridge/rotate/", views.rotate_bridge_token, name="bridge_rotate"),
    path("api/agents/<slug:slug>/settings/", views.settings_api, name="settings_api"),
]
