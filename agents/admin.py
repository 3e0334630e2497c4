from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from agents.forms import MemorySettingsForm
from agents.models import Agent


class AgentAdminForm(MemorySettingsForm, forms.ModelForm):
    """Django admin edits agno_settings through the Memory tab's typed fields (checkboxes and
    bounded numbers), never as raw JSON: a JSON "false" can no longer be read as on."""

    class Meta:
        model = Agent
        # agno_settings is not among them: the typed fields above stand for it.
        fields = [
            "name",
            "slug",
            "description",
            "db_schema",
            "connection",
            "memory_table",
            "session_table",
            "runs_table",
            "user_id_kind",
            "trash_days",
            "token_budget",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The connections this deployment configures (RUNTIME_DATABASES), and the stored one.
        names = list(dict.fromkeys([*settings.RUNTIME_CONNECTIONS, self.instance.connection]))
        self.fields["connection"] = forms.ChoiceField(
            choices=[(name, name) for name in names if name],
            required=False,  # blank: the studio's own database, "default"
            initial=self.instance.connection or "default",
            label="Runtime connection",
            help_text=Agent._meta.get_field("connection").help_text,
        )
        # Left blank (or absent from an older form), the agent keeps what it has.
        self.fields["trash_days"].required = False
        typed = MemorySettingsForm.for_settings(self.instance.memory_settings)
        for name in MemorySettingsForm.base_fields:
            self.initial.setdefault(name, typed.initial[name])

    def clean_connection(self) -> str:
        return self.cleaned_data.get("connection") or "default"

    def clean_trash_days(self) -> int:
        days = self.cleaned_data.get("trash_days")
        return self.instance.trash_days if days is None else days

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(name in self.errors for name in MemorySettingsForm.base_fields):
            # Keys the form does not own (the bridge's, a newer version's) are kept.
            requested = self.requested_settings()
            self.instance.agno_settings = requested.to_json(self.instance.agno_settings)
        return data

    def _update_errors(self, errors: ValidationError) -> None:
        # The model reports rule violations on agno_settings, which is no field here.
        if hasattr(errors, "error_dict") and "agno_settings" in errors.error_dict:
            moved = dict(errors.error_dict)
            moved[NON_FIELD_ERRORS] = moved.get(NON_FIELD_ERRORS, []) + moved.pop("agno_settings")
            errors = ValidationError(moved)
        super()._update_errors(errors)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    list_display = ["name", "slug", "connection", "db_schema", "user_id_kind", "updated_at"]
    search_fields = ["name", "slug", "db_schema"]
    prepopulated_fields = {"slug": ["name"]}
    # cost_inputs belong to the cost page, whose form checks them; raw JSON here could not be.
    readonly_fields = ["cost_inputs", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "user_id_kind"]}),
        (
            "Runtime tables (as the agent's PostgresDb names them)",
            {"fields": ["connection", "db_schema", "memory_table", "session_table", "runs_table"]},
        ),
        ("Cost", {"fields": ["token_budget", "cost_inputs"]}),
        ("Trash", {"fields": ["trash_days"]}),
        (
            "Memory settings (as on the Memory tab)",
            {"fields": list(MemorySettingsForm.base_fields)},
        ),
        ("Times", {"fields": ["created_at", "updated_at"]}),
    ]
