from django.urls import path

from memories import (
    cost_views,
    import_export_views,
    jobs_views,
    people_views,
    prune_views,
    sensitive_views,
    session_views,
    trash_views,
    views,
)

app_name = "memories"
# user_id travels in the query string: it may hold "/", "%", spaces or any letter.
urlpatterns = [
    path("agents/<slug:slug>/user/", views.user_memories, name="user"),
    path("agents/<slug:slug>/user/memories/add/", views.add_memory, name="add"),
    path("agents/<slug:slug>/user/topics/", views.memory_topics, name="topics"),
    path("agents/<slug:slug>/user/memories/bulk-delete/", views.bulk_delete, name="bulk_delete"),
    # memory_id and session_id travel in the query string too, whatever characters they hold.
    path("agents/<slug:slug>/memory/", views.memory_row, name="row"),
    path("agents/<slug:slug>/memory/edit/", views.edit_memory, name="edit"),
    path("agents/<slug:slug>/memory/delete/", views.delete_memory, name="delete"),
    path("agents/<slug:slug>/user/sessions/", session_views.user_sessions, name="sessions"),
    path("agents/<slug:slug>/user/register/", people_views.register_user, name="register"),
    path("agents/<slug:slug>/session/", session_views.transcript, name="transcript"),
    path(
        "agents/<slug:slug>/session/delete/",
        session_views.delete_session,
        name="delete_session",
    ),
    path("agents/<slug:slug>/memories/", import_export_views.search_memories, name="search"),
    path("agents/<slug:slug>/export.jsonl", import_export_views.export_memories, name="export"),
    path("agents/<slug:slug>/import/", import_export_views.import_memories, name="import"),
    path("agents/<slug:slug>/user/context/", cost_views.context_cost, name="context"),
    path("agents/<slug:slug>/cost/", cost_views.cost_panel, name="cost"),
    path("agents/<slug:slug>/cost/save/", cost_views.save_cost_inputs, name="save_cost"),
    path("agents/<slug:slug>/prune/", prune_views.prune, name="prune"),
    path("agents/<slug:slug>/prune/preview/", prune_views.preview_prune, name="preview_prune"),
    path("agents/<slug:slug>/prune/<int:job_id>/", prune_views.prune_job, name="prune_job"),
    path(
        "agents/<slug:slug>/prune/<int:job_id>/batch/",
        prune_views.prune_batch,
        name="prune_batch",
    ),
    path("agents/<slug:slug>/sensitive/", sensitive_views.sensitive, name="sensitive"),
    path("agents/<slug:slug>/sensitive/scan/", sensitive_views.scan_sensitive, name="scan"),
    path(
        "agents/<slug:slug>/sensitive/delete/",
        sensitive_views.delete_flagged,
        name="delete_flagged",
    ),
    path("agents/<slug:slug>/jobs/", jobs_views.agent_jobs, name="agent_jobs"),
    path("agents/<slug:slug>/export/start/", jobs_views.start_export, name="start_export"),
    path(
        "agents/<slug:slug>/prune/<int:job_id>/confirm/",
        prune_views.confirm_prune,
        name="confirm_prune",
    ),
    path("agents/<slug:slug>/trash/", trash_views.trash_list, name="trash"),
    path("agents/<slug:slug>/trash/restore/", trash_views.restore_trash, name="restore_trash"),
    path("agents/<slug:slug>/trash/delete/", trash_views.purge_trash, name="purge_trash"),
    path("jobs/", jobs_views.all_jobs, name="jobs"),
    path("jobs/<int:job_id>/", jobs_views.job_row, name="job"),
    path("jobs/<int:job_id>/cancel/", jobs_views.cancel_job, name="cancel_job"),
    path("jobs/<int:job_id>/retry/", jobs_views.retry_job, name="retry_job"),
    path("jobs/<int:job_id>/download/", jobs_views.download_export, name="download_export"),
    path("forget/", people_views.forget_user, name="forget"),
    path("forget/receipts/<int:receipt_id>/", people_views.forget_receipt, name="receipt"),
    path(
        "forget/receipts/<int:receipt_id>.json",
        people_views.forget_receipt_json,
        name="receipt_json",
    ),
    path("audit/", people_views.audit_log, name="audit"),
]
