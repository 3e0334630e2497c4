from __future__ import annotations

import hashlib
import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare, salted_hmac

from memories.duplicates import DEFAULT_THRESHOLD, MIN_THRESHOLD
from memories.pruning import PruneCriteria
from memories.runtime import MEMORY_SORTS
from memories.runtime.access import MAX_CURSOR_CHARS
from memories.users import user_label

MAX_MEMORY_CHARS = 10_000
MAX_TOPICS = 20
MAX_TOPIC_CHARS = 64
# Far beyond what the runtime can store (its btree index on user_id holds ~2,700 bytes),
# so it only ever stops something typed, never an id already stored.
MAX_USER_ID_CHARS = 10_000
MAX_BULK = 500
# What an import reads: JSON Lines under any of these names, or CSV with a header row.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIX = ".csv"
TOPICS_RULE = f"One topic per box, commas allowed; each is at most {MAX_TOPIC_CHARS} letters"


def typed_topic(value: str) -> str:
    """A topic as a person typed it: padding and runs of spaces dropped, NUL removed."""
    return " ".join(_strip_null_bytes(value).split())


class TopicListInput(forms.Widget):
    """Topics arrive as one form value per topic (`request.POST.getlist`), never re-split."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        if hasattr(data, "getlist"):
            return data.getlist(name)
        value = data.get(name)  # a plain dict, as tests and scripts build forms
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False  # no topic sent is an empty list, as with a checkbox


class TopicsField(forms.Field):
    """One value per topic in, a de-duplicated list out; blank values are ignored."""

    widget = TopicListInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", f"{TOPICS_RULE}, {MAX_TOPICS} at most.")
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        values = value if isinstance(value, (list, tuple)) else [value] if value else []
        # dict.fromkeys drops repeats in linear time: the limits are checked after.
        return list(dict.fromkeys(t for t in (typed_topic(str(v)) for v in values) if t))

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError("Give at least one topic.", code="required")
        check_topic_limits(value, MAX_TOPICS)


def check_topic_limits(typed: list[str], allowed: int, total: int | None = None) -> None:
    """Refuse more than `allowed` topics in all (`total`, default: the typed ones) or a typed
    topic over the length limit. Topics kept as stored are not in `typed`."""
    count = len(typed) if total is None else total
    if count > allowed:
        raise ValidationError(
            f"At most {allowed} topics per memory; this has {count}.", code="too_many"
        )
    too_long = [t for t in typed if len(t) > MAX_TOPIC_CHARS]
    if too_long:
        raise ValidationError(
            f"{TOPICS_RULE} (“{too_long[0][:20]}…” is {len(too_long[0])}).", code="too_long"
        )


def topic_key(topic: str) -> str:
    """What an edit form remembers of one topic it showed, signed so that a topic typed anew
    cannot pass for a stored one (stored topics are exempt from the limits)."""
    return salted_hmac(
        "memories.topic_key", topic.encode("utf-8", "surrogatepass"), algorithm="sha256"
    ).hexdigest()[:16]


def signed_topic_keys(version: str, topics: list[str]) -> str:
    """The topics_shown value: a topic_key per stored topic, in order, signed together with
    the memory's version, so that only the topics this memory stored count as stored."""
    keys = " ".join(topic_key(topic) for topic in topics)
    return f"{keys} {_topics_signature(version, keys)}".strip()


def stored_topic_keys(version: str, value: str) -> list[str]:
    """The keys signed_topic_keys() gave for `version`; [] for anything it did not sign."""
    *keys, signature = value.split() or [""]
    expected = _topics_signature(version, " ".join(keys))
    return keys if constant_time_compare(signature, expected) else []


def _topics_signature(version: str, keys: str) -> str:
    return salted_hmac("memories.topics_shown", f"{version} {keys}", algorithm="sha256").hexdigest()


def _memory_text_field(**attrs: Any) -> forms.CharField:
    # max_length also becomes the textarea's maxlength, so the page and the check agree.
    return forms.CharField(
        max_length=MAX_MEMORY_CHARS,
        strip=True,
        widget=forms.Textarea(attrs=attrs),
        error_messages={
            "required": "Write the memory's text; it cannot be empty.",
            "max_length": f"A memory is at most {MAX_MEMORY_CHARS:,} characters "
            "(this one has %(show_value)d).",
        },
    )


def _strip_null_bytes(value: str) -> str:
    # Postgres text cannot hold NUL; the runtime strips them too.
    return value.replace("\x00", "")


class MemoryForm(forms.Form):
    text = _memory_text_field(rows=2, placeholder="Prefers concise answers.")
    topics = TopicsField()
    input = forms.CharField(
        required=False,
        max_length=MAX_MEMORY_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": f"The input is at most {MAX_MEMORY_CHARS:,} characters."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", False)  # labels wrap their fields; no id to collide
        super().__init__(*args, **kwargs)

    def clean_text(self) -> str:
        return _strip_null_bytes(self.cleaned_data["text"])

    def clean_input(self) -> str:
        return _strip_null_bytes(self.cleaned_data["input"])


def fingerprint(value: str) -> str:
    """What an edit form remembers of a value it showed, to tell whether the person changed it
    (browsers send a textarea's line breaks as CRLF, and padding is not a change)."""
    normalised = value.replace("\r\n", "\n").strip()
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class EditMemoryForm(forms.Form):
    """An edit changes only what the person changed: a text or topics left as shown come back
    as None and are kept as stored, however long, odd or non-string they are. The limits apply
    to what is typed."""

    # Not required here: a stored "" sent back as shown is kept (clean() requires typed text).
    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "autofocus": True, "maxlength": MAX_MEMORY_CHARS}),
    )
    # The values exactly as sent: which of them are stored topics is decided in clean().
    topics = forms.Field(required=False, widget=TopicListInput, help_text=TopicsField().help_text)
    version = forms.CharField(
        max_length=64,
        widget=forms.HiddenInput,
        error_messages={"required": "The form lost track of the memory's version; reload."},
    )
    text_shown = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    # One topic_key per topic shown, in order (a stored list can be long: no length limit).
    topics_shown = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Several rows can be in edit at once: ids would repeat, and labels wrap their fields.
        kwargs.setdefault("auto_id", False)
        super().__init__(*args, **kwargs)

    @classmethod
    def for_memory(
        cls, memory: Any, text: str | None = None, topics: list[str] | None = None
    ) -> Any:
        shown_topics = memory.topic_list
        return cls(
            initial={
                "text": memory.text if text is None else text,
                "topics": shown_topics if topics is None else topics,
                "version": memory.version,
                "text_shown": fingerprint(memory.text),
                "topics_shown": signed_topic_keys(memory.version, shown_topics),
            }
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "text" in data:
            data["text"] = self._changed("text", data["text"], _memory_text_field())
        if "topics" in data:
            data["topics"] = self._changed_topics(data["topics"] or [])
        return data

    def _changed(self, name: str, value: str, field: forms.Field) -> Any:
        """None when the value is as shown; otherwise the typed value, checked as when added."""
        if fingerprint(value) == self.cleaned_data.get(f"{name}_shown"):
            return None
        try:
            cleaned = field.clean(value)
        except ValidationError as error:
            self.add_error(name, error)
            return None
        return _strip_null_bytes(cleaned) if isinstance(cleaned, str) else cleaned

    def _changed_topics(self, sent: list[str]) -> list[str] | None:
        """None when the topics come back as shown. Otherwise the new list: stored topics the
        person left alone stay verbatim (commas, padding, repeats); typed ones are tidied and
        meet the limits, and the list may not grow past max(limit, what was stored)."""
        version = self.cleaned_data.get("version", "")
        shown = stored_topic_keys(version, self.cleaned_data.get("topics_shown") or "")
        # A stored "" topic has no box (an empty box is the "new topic" one): it stays put.
        empty = topic_key("")
        values = [value for value in sent if value != ""]  # the empty "new topic" box
        keys = [topic_key(value) for value in values]
        if keys == [key for key in shown if key != empty]:
            return None
        stored = set(shown)
        result: list[str] = []
        typed: list[str] = []
        seen: set[str] = set()  # a set, so 20,000 boxes cost linear time
        for value, key in zip(values, keys, strict=True):
            if key in stored:
                result.append(value)
                seen.add(value)
                continue
            topic = typed_topic(value)
            if topic and topic not in seen:
                result.append(topic)
                typed.append(topic)
                seen.add(topic)
        for position, key in enumerate(shown):
            if key == empty:
                result.insert(min(position, len(result)), "")
        try:
            check_topic_limits(typed, max(MAX_TOPICS, len(shown)), total=len(result))
        except ValidationError as error:
            self.add_error("topics", error)
            return None
        return result


class UserIdField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_USER_ID_CHARS)
        kwargs.setdefault("strip", False)  # " ann" and "ann" are different runtime user_ids
        kwargs.setdefault("validators", [validate_storable])
        kwargs.setdefault(
            "error_messages",
            {
                "required": "Say which user: the link is missing its user_id.",
                "max_length": f"A user_id is at most {MAX_USER_ID_CHARS} characters.",
            },
        )
        super().__init__(**kwargs)


def validate_storable(value: str) -> None:
    # Postgres text cannot hold NUL, and a lone surrogate cannot be encoded for it.
    if "\x00" in value:
        raise ValidationError("An id cannot contain the character U+0000.", code="null")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError("An id cannot contain a lone surrogate.", code="surrogate") from None


class RuntimeIdField(forms.CharField):
    """A memory_id or session_id as the runtime stored it: any length, any characters, the
    empty string included (agno keeps memory_id="" as given). Its form checks it was sent."""

    default_validators = [validate_storable]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)  # "" is an id; a missing parameter is not
        super().__init__(**kwargs)


class _RuntimeIdForm(forms.Form):
    """One id parameter, which must be present; its value may be the empty string."""

    parameter = ""
    missing = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.parameter not in self.data:
            raise ValidationError(self.missing, code="required")
        return data


class MemoryIdForm(_RuntimeIdForm):
    parameter, missing = "memory_id", "Say which memory: the link is missing its memory_id."
    memory_id = RuntimeIdField()


class SessionIdForm(_RuntimeIdForm):
    parameter, missing = "session_id", "Say which session: the link is missing its session_id."
    session_id = RuntimeIdField()


class UserForm(forms.Form):
    """The user a page or action is about, as a query or form parameter: `user_id` (the
    empty string included, which the runtime can store) or `no_user_id=1` for the rows the
    runtime stored with user_id NULL."""

    user_id = UserIdField(required=False)
    no_user_id = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("no_user_id") and "user_id" not in self.data:
            raise ValidationError(
                "Say which user: the link is missing its user_id.", code="required"
            )
        return data

    @property
    def user_id_value(self) -> str | None:
        return None if self.cleaned_data.get("no_user_id") else self.cleaned_data["user_id"]


class MemoryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True)
    # A stored topic chosen from the filter's options: any length the runtime stored.
    topic = forms.CharField(required=False, strip=False, validators=[validate_storable])
    sort = forms.ChoiceField(required=False, choices=list(MEMORY_SORTS.items()))
    after = forms.CharField(required=False, max_length=MAX_CURSOR_CHARS)
    sensitive = forms.BooleanField(required=False)

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "-updated"


class UserSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True)
    after = forms.CharField(required=False, max_length=MAX_CURSOR_CHARS)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("", "By user_id"),
            ("tokens", "Most memory tokens"),
            ("over", "Over the token budget"),
        ],
    )


class BulkDeleteForm(UserForm):
    memory_ids = forms.MultipleChoiceField(
        error_messages={"required": "Select at least one memory to delete."}
    )
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("memory_ids") if hasattr(self.data, "getlist") else []
        # Any id is a valid choice here; whether it is this user's is the runtime's question.
        self.fields["memory_ids"].choices = [(i, i) for i in ids]

    def clean_memory_ids(self) -> list[str]:
        ids = list(dict.fromkeys(self.cleaned_data["memory_ids"]))
        if len(ids) > MAX_BULK:
            raise ValidationError(f"Delete at most {MAX_BULK} memories at once.")
        for memory_id in ids:  # any length or character the runtime can store
            validate_storable(memory_id)
        return ids


class ForgetUserForm(forms.Form):
    user_id = UserIdField(required=False)
    no_user_id = forms.BooleanField(required=False)  # the runtime's rows with user_id NULL
    agent = forms.CharField(required=False, max_length=60)  # empty: every agent
    confirmation = forms.CharField(required=False, strip=False, max_length=MAX_USER_ID_CHARS)
    background = forms.BooleanField(required=False)  # a job, one agent per batch
    # The registry entry (email or id equal to the user_id) goes too, when asked.
    remove_registration = forms.BooleanField(required=False)

    def __init__(self, *args: Any, agents: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.all_agents = list(agents)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        slug = data.get("agent") or ""
        chosen = [a for a in self.all_agents if not slug or a.slug == slug]
        if slug and not chosen:
            raise ValidationError(f"There is no agent “{slug}”.")
        data["agents"] = chosen
        if (
            not data.get("no_user_id")
            and not self.data.get("user_id")
            and "user_id" not in self.data
        ):
            raise ValidationError("Say which user_id to forget.", code="required")
        target = None if data.get("no_user_id") else data.get("user_id", "")
        data["target"] = target
        # NULL and the empty user_id are confirmed by their names ("no user_id", ...).
        data["phrase"] = user_label(target)
        data["confirmation_matches"] = data.get("confirmation") == data["phrase"]
        return data


class ImportForm(forms.Form):
    file = forms.FileField(
        widget=forms.FileInput(attrs={"accept": ",".join((*JSON_LINES_SUFFIXES, CSV_SUFFIX))}),
        error_messages={"required": "Choose a .jsonl or .csv file to import."},
    )
    user_id = UserIdField(required=False, help_text="Optional: every row is for this user.")
    valid_rows_only = forms.BooleanField(
        required=False, label="Import the valid rows even if some are rejected"
    )
    dry_run = forms.BooleanField(required=False, label="Only check the file; write nothing")
    background = forms.BooleanField(
        required=False, label="Write it in the background, in batches (for large files)"
    )


class CostForm(forms.Form):
    conversations_per_month = forms.IntegerField(
        min_value=0, max_value=10**10, label="Conversations per month"
    )
    turns_per_conversation = forms.IntegerField(
        min_value=1, max_value=10_000, label="Turns per conversation"
    )
    price_per_million = forms.DecimalField(
        min_value=0,
        max_value=10_000,
        decimal_places=4,
        label="Price per million input tokens (USD)",
    )
    extraction_tokens_per_call = forms.IntegerField(
        min_value=0, max_value=10**7, label="Input tokens per memory extraction call"
    )
    token_budget = forms.IntegerField(
        min_value=0, max_value=10**8, label="Token budget per user (0: none)"
    )


class PruneForm(forms.Form):
    """Prune criteria. The user is named as on every page (UserForm): `no_user_id=1` for the
    rows stored with user_id NULL, `user_id` (the empty string included) for any other, and
    neither for every user. The page's typed box sends `user_id_box` too: blank there means
    every user, so the empty user_id comes from its link (`?user_id=`) instead."""

    older_than_days = forms.IntegerField(
        required=False, min_value=1, max_value=36_500, label="Not updated for (days)"
    )
    keep_newest = forms.IntegerField(
        required=False, min_value=0, max_value=1_000_000, label="Keep the newest per user"
    )
    # Any topic the runtime stored, however long, padding included ("  a " is not "a"): the
    # only limit is what a database holds.
    topic = forms.CharField(required=False, strip=False, validators=[validate_storable])
    user_id = UserIdField(required=False)
    no_user_id = forms.BooleanField(required=False)
    user_id_box = forms.BooleanField(required=False, widget=forms.HiddenInput)

    @property
    def criteria_fields(self) -> list[forms.BoundField]:
        """The fields the page lays out in a row; the user is laid out on its own."""
        return [self["older_than_days"], self["keep_newest"], self["topic"]]

    @property
    def fixed_user(self) -> bool:
        """Whether the form names one of the two user_ids nobody can type in the box."""
        return self._named_user()[0]

    @property
    def fixed_user_id(self) -> str | None:
        return self._named_user()[1]

    def _named_user(self) -> tuple[bool, str | None]:
        source = self.data if self.is_bound else self.initial
        if self.fields["no_user_id"].to_python(source.get("no_user_id")):
            return True, None
        if source.get("user_id", None) == "" and not source.get("user_id_box"):
            return True, ""
        return False, None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        typed_blank = data.get("user_id_box") and data.get("user_id") == ""
        named = "user_id" in self.data and not typed_blank
        if data.get("no_user_id") and named:
            raise ValidationError(
                "Name one user: a user_id, or the memories stored with no user_id, not both.",
                code="two_users",
            )
        data["one_user"] = bool(data.get("no_user_id")) or named
        data["owner"] = None if data.get("no_user_id") else data.get("user_id", "")
        if not (
            data.get("older_than_days")
            or data.get("keep_newest") is not None
            or data.get("topic")
            or data["one_user"]
        ):
            raise ValidationError(
                "Choose at least one criterion: an age, a number to keep, a topic or a user."
            )
        return data

    def criteria(self) -> PruneCriteria:
        """The criteria a valid form names (page and command alike)."""
        data = self.cleaned_data
        return PruneCriteria(
            older_than_days=data.get("older_than_days"),
            keep_newest=data.get("keep_newest"),
            topic=data.get("topic") or "",
            user_id=data["owner"] if data["one_user"] else "",
            one_user=data["one_user"],
        )


class MoveUserForm(UserForm):
    """Move a user_id's memories (the user named as on every page) to another user_id."""

    to = UserIdField(
        error_messages={
            "required": "Say which user_id the memories should move to.",
            "max_length": f"A user_id is at most {MAX_USER_ID_CHARS} characters.",
        }
    )
    sessions = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        target = data.get("to")
        if self.errors or target is None:
            return data
        if not target.strip():
            raise ValidationError(
                "A user_id of only spaces reaches nobody; choose the person's real user_id.",
                code="blank",
            )
        if target == self.user_id_value:
            raise ValidationError(
                "The memories are already under that user_id: choose another one.", code="same"
            )
        return data


class DuplicatesForm(forms.Form):
    """Where to look for repeats: one user (`user_id` or `no_user_id=1`) or, without either,
    every user of the agent; and how alike near repeats must be."""

    user_id = UserIdField(required=False)
    no_user_id = forms.BooleanField(required=False)
    threshold = forms.FloatField(
        required=False,
        min_value=MIN_THRESHOLD,
        max_value=1.0,
        label="Near-repeat threshold",
        error_messages={
            "invalid": "The threshold is a number between 0.3 and 1, such as 0.8.",
            "min_value": f"The threshold is at least {MIN_THRESHOLD}: below it almost any two "
            "sentences look alike.",
            "max_value": "The threshold is at most 1 (identical trigrams).",
        },
    )
    exact_only = forms.BooleanField(required=False, label="Exact repeats only")

    def clean_threshold(self) -> float:
        value = self.cleaned_data.get("threshold")
        if value is not None and not math.isfinite(value):
            raise ValidationError("The threshold is a number between 0.3 and 1, such as 0.8.")
        return DEFAULT_THRESHOLD if value is None else round(value, 2)

    @property
    def all_users(self) -> bool:
        return not self.cleaned_data.get("no_user_id") and "user_id" not in self.data

    @property
    def user_id_value(self) -> str | None:
        if self.all_users or self.cleaned_data.get("no_user_id"):
            return None
        return self.cleaned_data["user_id"]


class RemoveDuplicatesForm(DuplicatesForm):
    remove = forms.MultipleChoiceField(
        error_messages={"required": "Choose at least one repeat to remove."}
    )
    merge_topics = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("remove") if hasattr(self.data, "getlist") else []
        # Any id is a valid choice here; whether it is a repeat is checked against the groups.
        self.fields["remove"].choices = [(i, i) for i in ids]

    def clean_remove(self) -> list[str]:
        ids = list(dict.fromkeys(self.cleaned_data["remove"]))
        if len(ids) > MAX_BULK:
            raise ValidationError(f"Remove at most {MAX_BULK} repeats at once.")
        for memory_id in ids:
            validate_storable(memory_id)
        return ids


MALFORMED_PAGE_LINK = "This page link is malformed. Start again from the first page."


class TrashPageForm(forms.Form):
    """Which page of the trash: `after` is the id of the last entry shown (a bigint)."""

    after = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        error_messages=dict.fromkeys(("invalid", "min_value", "max_value"), MALFORMED_PAGE_LINK),
    )


class TrashSelectionForm(forms.Form):
    """Trashed memories a person picked (restore, delete for good, or an Undo)."""

    trashed = forms.MultipleChoiceField(
        error_messages={"required": "Select at least one trashed memory."}
    )
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("trashed") if hasattr(self.data, "getlist") else []
        self.fields["trashed"].choices = [(i, i) for i in ids]

    def clean_trashed(self) -> list[int]:
        from memories.trash import MOST_AT_ONCE

        try:
            ids = sorted({int(value) for value in self.cleaned_data["trashed"]})
        except ValueError:
            raise ValidationError("Trashed memories are named by their number.") from None
        if len(ids) > MOST_AT_ONCE:
            raise ValidationError(f"Pick at most {MOST_AT_ONCE} trashed memories at once.")
        if any(pk <= 0 or pk > 2**63 - 1 for pk in ids):
            raise ValidationError("Trashed memories are named by their number.")
        return ids
