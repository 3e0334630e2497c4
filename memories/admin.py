from __future__ import annotations

from django.contrib import admin

from memories.models import AuditEvent, EndUser
from memories.people_forms import EndUserForm


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    # The register page's form: additional_attributes typed as JSON jsonb can hold.
    form = EndUserForm
    list_display = ["email", "external_id", "first_name", "last_name", "timezone"]
    search_fields = ["email", "external_id", "first_name", "last_name"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "agent_slug", "user_id", "memory_id"]
    list_filter = ["action", "agent_slug"]
    search_fields = ["user_id", "memory_id", "actor_name"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    # The audit trail is append-only, even for superusers in admin.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
