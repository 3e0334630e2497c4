from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from django import forms

from agents.memory_settings import (
    COMPRESSION_THRESHOLD_RANGE,
    MAX_TOOL_CALLS_RANGE,
    NUM_HISTORY_RUNS_RANGE,
    MemorySettings,
)


def _whole_number(label: str, bounds: tuple[int, int]) -> forms.IntegerField:
    low, high = bounds
    message = f"{label} is a whole number from {low} to {high}."
    return forms.IntegerField(
        min_value=low,
        max_value=high,
        error_messages={
            "required": message,
            "invalid": message,
            "min_value": message,
            "max_value": message,
        },
    )


class MemorySettingsForm(forms.Form):
    """The Memory tab as a person sees it: memories on/off plus "agentic managed"."""

    session_storage = forms.BooleanField(required=False)
    num_history_runs = _whole_number("The number of history runs", NUM_HISTORY_RUNS_RANGE)
    user_memories_on = forms.BooleanField(required=False)
    user_memories_agentic = forms.BooleanField(required=False)
    agent_memories = forms.BooleanField(required=False)
    agentic_agent_memories = forms.BooleanField(required=False)
    session_summaries = forms.BooleanField(required=False)
    max_tool_calls_from_history = _whole_number("Max tool calls from history", MAX_TOOL_CALLS_RANGE)
    compress_tool_results_threshold = _whole_number(
        "The compression threshold", COMPRESSION_THRESHOLD_RANGE
    )

    @classmethod
    def for_settings(cls, settings: MemorySettings, **kwargs: Any) -> MemorySettingsForm:
        return cls(
            initial={
                "session_storage": settings.session_storage,
                "num_history_runs": settings.num_history_runs,
                "user_memories_on": settings.memories_enabled,
                "user_memories_agentic": settings.agentic_memory,
                "agent_memories": settings.agent_memories,
                "agentic_agent_memories": settings.agentic_agent_memories,
                "session_summaries": settings.session_summaries,
                "max_tool_calls_from_history": settings.max_tool_calls_from_history,
                "compress_tool_results_threshold": settings.compress_tool_results_threshold,
            },
            **kwargs,
        )

    def requested_settings(self) -> MemorySettings:
        data = self.cleaned_data
        memories_on = data["user_memories_on"]
        return MemorySettings(
            session_storage=data["session_storage"],
            num_history_runs=data["num_history_runs"],
            user_memories=memories_on and not data["user_memories_agentic"],
            agentic_memory=memories_on and data["user_memories_agentic"],
            agent_memories=data["agent_memories"],
            agentic_agent_memories=data["agentic_agent_memories"],
            session_summaries=data["session_summaries"],
            max_tool_calls_from_history=data["max_tool_calls_from_history"],
            compress_tool_results_threshold=data["compress_tool_results_threshold"],
        )


class MemoryTabForm(MemorySettingsForm):
    """The Memory tab's panel, which also carries the settings it showed (`shown`): a save
    applies what the person changed since, so two people's changes to different switches
    both stay (change_settings merges them under the agent's lock)."""

    shown = forms.CharField(required=False, max_length=2_000, widget=forms.HiddenInput)

    @classmethod
    def for_settings(cls, settings: MemorySettings, **kwargs: Any) -> MemoryTabForm:
        form = super().for_settings(settings, **kwargs)
        form.initial["shown"] = json.dumps(asdict(settings), separators=(",", ":"))
        return form

    def shown_settings(self) -> MemorySettings | None:
        """The settings the page showed, or None (an older page, or anything but a flat
        object of the settings' own values): then the whole panel is what the person asks
        for, as before. A made-up value only chooses which of their own fields apply."""
        try:
            shown = json.loads(self.cleaned_data.get("shown") or "null")
        except (ValueError, RecursionError):
            return None
        names = {field.name for field in fields(MemorySettings)}
        if not isinstance(shown, dict) or not set(shown) <= names:
            return None
        if not all(isinstance(value, bool | int) for value in shown.values()):
            return None
        return MemorySettings.from_json(shown)


class DiscoverForm(forms.Form):
    """Which runtime connection to look through for agents (discovery)."""

    connection = forms.ChoiceField(required=False)

    def __init__(self, *args, connections: list[str], **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.fields["connection"].choices = [(name, name) for name in connections]
        self.fields["connection"].error_messages["invalid_choice"] = (
            "There is no runtime connection of that name; choose one from the list."
        )

    def clean_connection(self) -> str:
        return self.cleaned_data.get("connection") or self.fields["connection"].choices[0][0]


class RegisterDiscoveredForm(forms.Form):
    """A schema discovery found, to become an agent: the connection and schema name it."""

    connection = forms.CharField(max_length=63)
    schema = forms.CharField(max_length=63)
    name = forms.CharField(max_length=120, required=False, strip=True)
