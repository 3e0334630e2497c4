from django.urls import path

from memories import hygiene_views, views

app_name = "memories"
# user_id travels in the query string: it may hold "/", "%", spaces or any letter.
urlpatterns = [
    path("agents/<slug:slug>/user/", views.user_memories, name="user"),
    path("agents/<slug:slug>/user/memories/add/", views.add_memory, name="add"),
    path("agents/<slug:slug>/user/topics/", views.memory_topics, name="topics"),
    path("agents/<slug:slug>/user/memories/bulk-delete/", views.bulk_delete, name="bulk_delete"),
    path("agents/<slug:slug>/memories/<str:memory_id>/", views.memory_row, name="row"),
    path("agents/<slug:slug>/memories/<str:memory_id>/edit/", views.edit_memory, name="edit"),
    path("agents/<slug:slug>/memories/<str:memory_id>/delete/", views.delete_memory, name="delete"),
    path("agents/<slug:slug>/user/sessions/", views.user_sessions, name="sessions"),
    path("agents/<slug:slug>/user/register/", views.register_user, name="register"),
    path("agents/<slug:slug>/sessions/<str:session_id>/", views.transcript, name="transcript"),
    path(
        "agents/<slug:slug>/sessions/<str:session_id>/delete/",
        views.delete_session,
        name="delete_session",
    ),
    path("agents/<slug:slug>/memories/", views.search_memories, name="search"),
    path("agents/<slug:slug>/export.jsonl", views.export_memories, name="export"),
    path("agents/<slug:slug>/import/", views.import_memories, name="import"),
    path("agents/<slug:slug>/user/context/", hygiene_views.context_cost, name="context"),
    path("agents/<slug:slug>/cost/", hygiene_views.cost_panel, name="cost"),
    path("agents/<slug:slug>/prune/", hygiene_views.prune, name="prune"),
    path("agents/<slug:slug>/prune/<int:job_id>/", hygiene_views.prune_job, name="prune_job"),
    path(
        "agents/<slug:slug>/prune/<int:job_id>/batch/",
        hygiene_views.prune_batch,
        name="prune_batch",
    ),
    path("agents/<slug:slug>/sensitive/", hygiene_views.sensitive, name="sensitive"),
    path(
        "agents/<slug:slug>/sensitive/delete/", hygiene_views.delete_flagged, name="delete_flagged"
    ),
    path("forget/", views.forget_user, name="forget"),
    path("audit/", views.audit_log, name="audit"),
]
