from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest

from agents.forms import MemorySettingsForm, MemoryTabForm
from agents.memory_settings import MemorySettings, merge_changes
from agents.models import Agent
from memories import actions


class AgentAdminForm(MemoryTabForm, forms.ModelForm):
    """Django admin edits agno_settings through the Memory tab's typed fields (checkboxes and
    bounded numbers), never as raw JSON: a JSON "false" can no longer be read as on.

    The page saves the whole panel, so it carries the settings it showed (`shown`, as the
    Memory tab does) and a page older than the stored settings is refused, not saved over
    what someone changed on the Memory tab meanwhile."""

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
        # Unbounded for staff: stored numbers of 1,000 digits (1e999) make it long, and an
        # error on this hidden field would be one nobody sees.
        self.fields["shown"] = forms.CharField(required=False, widget=forms.HiddenInput)
        typed = MemoryTabForm.for_settings(self.instance.memory_settings)
        for name in MemoryTabForm.base_fields:
            self.initial.setdefault(name, typed.initial[name])

    def clean_connection(self) -> str:
        return self.cleaned_data.get("connection") or "default"

    def clean_trash_days(self) -> int:
        days = self.cleaned_data.get("trash_days")
        return self.instance.trash_days if days is None else days

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if any(name in self.errors for name in MemoryTabForm.base_fields):
            return data
        requested, stored, shown = (
            self.requested_settings(),
            self.instance.memory_settings,
            self.shown_settings(),
        )
        if self.instance.pk is not None and shown != stored:
            # Nothing typed is lost: the panel comes back with the person's own changes on
            # top of the stored settings (all they sent, from a page that did not say what
            # it showed), checked by the rules, and saving it again applies that.
            if shown is None:
                panel, again = requested, "The memory settings below are the ones you sent"
            else:
                panel = merge_changes(stored, shown, requested)
                again = "The memory settings below are the stored ones with your changes on top"
            self._show_again(panel, stored)
            self.instance.agno_settings = panel.to_json(self.instance.agno_settings)
            stale = actions.StaleSettings(shown, stored)
            raise ValidationError(f"{stale.message} {again}: check them and save again.")
        # Keys the form does not own (the bridge's, a newer version's) are kept.
        self.instance.agno_settings = requested.to_json(self.instance.agno_settings)
        return data

    def _show_again(self, panel: MemorySettings, stored: MemorySettings) -> None:
        """Bind the panel to `panel` and `shown` to `stored`, for the page to show again."""
        shown = MemoryTabForm.for_settings(stored).initial["shown"]
        values = {**MemorySettingsForm.for_settings(panel).initial, "shown": shown}
        data = self.data.copy()  # a request's QueryDict is immutable
        for name, value in values.items():
            key = self.add_prefix(name)
            if value is False:
                data.pop(key, None)  # an unchecked box sends nothing
            else:
                data[key] = "on" if value is True else str(value)
        self.data = data

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
            {"fields": list(MemoryTabForm.base_fields)},
        ),
        ("Times", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Agent | None:
        agent = super().get_object(request, object_id, from_field)
        if agent is None or request.method != "POST":
            return agent
        # Locked until the admin's transaction ends (it wraps every POST): no Memory tab save
        # lands between the form's stale check and the save below.
        return Agent.objects.select_for_update().get(pk=agent.pk)

    def save_model(
        self, request: HttpRequest, obj: Agent, form: AgentAdminForm, change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)  # a new agent's first settings
            return
        # The settings go through the Memory tab's write path (lock, stale check, audit
        # event); the other fields are the admin's own.
        obj.save(update_fields=[*AgentAdminForm.Meta.fields, "updated_at"])
        actions.change_settings(
            actor=request.user,
            agent=obj,
            requested=form.requested_settings(),
            shown=form.shown_settings(),
            refuse_stale=True,
        )
