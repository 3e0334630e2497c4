"""The Memory tab's settings and their rules, kept in `Agent.agno_settings`.

One place decides what a combination of switches means: the model enforces the
invariants on save, the Memory tab applies changes through `apply_changes`, and
`agent_kwargs` maps the settings onto `agno.agent.Agent` so running agents and the
dashboard agree on every switch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

NUM_HISTORY_RUNS_RANGE = (1, 50)
MAX_TOOL_CALLS_RANGE = (0, 100)
COMPRESSION_THRESHOLD_RANGE = (0, 100)
# What the dashboard calls each memory mode, wherever it shows one.
MODE_LABELS = {"agentic": "Agentic", "manual": "Manual", "off": "Off"}


@dataclass(frozen=True)
class MemorySettings:
    session_storage: bool = False
    num_history_runs: int = 3
    user_memories: bool = False  # manual mode: the agent reads memories, your code writes them
    agentic_memory: bool = False  # agentic mode: the agent decides what to remember
    agent_memories: bool = False  # org-wide memories shared by every user of the agent
    agentic_agent_memories: bool = False
    session_summaries: bool = False
    max_tool_calls_from_history: int = 0  # 0 = keep every tool call
    compress_tool_results_threshold: int = 0  # 0 = never compress

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> MemorySettings:
        """Read the known keys of an agno_settings object; absent booleans are False."""
        data = data if isinstance(data, dict) else {}
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in data or data[field.name] is None:
                continue
            raw = data[field.name]
            values[field.name] = (
                _as_bool(raw) if field.type == "bool" else _as_int(raw, field.default)
            )
        return cls(**values)

    def to_json(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Merge into an existing agno_settings object, keeping keys this tab does not own."""
        merged = dict(base) if isinstance(base, dict) else {}
        merged.update(asdict(self))
        return merged

    @property
    def mode(self) -> str:
        if self.agentic_memory:
            return "agentic"
        if self.user_memories:
            return "manual"
        return "off"

    @property
    def mode_label(self) -> str:
        return MODE_LABELS[self.mode]

    @property
    def memories_enabled(self) -> bool:
        return self.user_memories or self.agentic_memory

    def violations(self) -> list[str]:
        problems = []
        if self.user_memories and self.agentic_memory:
            problems.append(
                "Manual user memories and agentic memory cannot both be on: choose one mode."
            )
        if self.memories_enabled and not self.session_storage:
            problems.append("User memories need session storage: turn session storage on first.")
        if self.agentic_agent_memories and not self.agent_memories:
            problems.append("Agentic agent memories need agent memories to be on.")
        for name, (low, high) in (
            ("num_history_runs", NUM_HISTORY_RUNS_RANGE),
            ("max_tool_calls_from_history", MAX_TOOL_CALLS_RANGE),
            ("compress_tool_results_threshold", COMPRESSION_THRESHOLD_RANGE),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                label = name.replace("_", " ")
                problems.append(f"The {label} must be a whole number from {low} to {high}.")
        return problems


def differences(before: MemorySettings, after: MemorySettings) -> str:
    """What `after` sets otherwise than `before`, in words: "session summaries on, num history
    runs 5" ("no change" when nothing differs)."""
    words = []
    for field in fields(MemorySettings):
        value = getattr(after, field.name)
        if value != getattr(before, field.name):
            shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
            words.append(f"{field.name.replace('_', ' ')} {shown}")
    return ", ".join(words) or "no change"


# Switches that are one choice on the page: the memory mode (off, manual, agentic) and
# agent memories with their agentic switch. A change to either half carries both.
LINKED_SWITCHES = (
    ("user_memories", "agentic_memory"),
    ("agent_memories", "agentic_agent_memories"),
)


def merge_changes(
    current: MemorySettings, shown: MemorySettings, requested: MemorySettings
) -> MemorySettings:
    """What a person asked for, on top of the settings as they are now: what they changed
    from what their page showed (`shown`), and nothing else, so a change someone made
    meanwhile to another switch stays. apply_changes then applies the rules."""
    changed = {
        f.name
        for f in fields(MemorySettings)
        if getattr(requested, f.name) != getattr(shown, f.name)
    }
    for pair in LINKED_SWITCHES:
        if changed & set(pair):
            changed |= set(pair)
    return replace(current, **{name: getattr(requested, name) for name in changed})


def apply_changes(
    current: MemorySettings, requested: MemorySettings
) -> tuple[MemorySettings, list[str]]:
    """Apply what the operator asked for, resolving conflicts in favour of the latest change.

    Returns the settings to save and one sentence per switch that moved as a consequence,
    so the page can say what happened and why. Memories are never deleted here.
    """
    result = requested
    notes: list[str] = []
    turned_on = {
        f.name
        for f in fields(MemorySettings)
        if getattr(requested, f.name) is True and getattr(current, f.name) is not True
    }

    if result.user_memories and result.agentic_memory:
        # The switch the operator just flipped wins; the other mode goes off.
        if "agentic_memory" in turned_on:
            result = replace(result, user_memories=False)
            notes.append("Manual mode was turned off: agentic memory replaces it.")
        else:
            result = replace(result, agentic_memory=False)
            notes.append("Agentic memory was turned off: manual mode replaces it.")

    if result.memories_enabled and not result.session_storage:
        if current.session_storage:
            # Session storage was just turned off: the mode that needs it goes off too.
            result = replace(result, user_memories=False, agentic_memory=False)
            notes.append(
                "User memories were turned off too: they need session storage. "
                "No memory was deleted; turning them on again brings them back."
            )
        else:
            result = replace(result, session_storage=True)
            notes.append("Session storage was turned on too: user memories need it.")

    if result.agentic_agent_memories and not result.agent_memories:
        if "agentic_agent_memories" in turned_on:
            result = replace(result, agent_memories=True)
            notes.append("Agent memories were turned on too: their agentic switch needs them.")
        else:
            result = replace(result, agentic_agent_memories=False)
    return result, notes


def _as_bool(value: Any) -> bool:
    """Only a true value is on: the JSON string "false" (or "0", "off") must not read as on."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "on"}
    return value is True or (isinstance(value, int) and value == 1)


def _as_int(value: Any, default: int) -> int:
    # 1e999 reads back from jsonb as infinity: int() of it overflows rather than fail.
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default
