"""Registering a person (memories.models.EndUser), as the runtime's User object names one:
email required, the rest optional. What a person types is trimmed and limited; a key the
runtime stored, sent back as the page showed it, is kept byte for byte."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from memories.forms import validate_storable
from memories.models import EndUser


class StorableJSONField(forms.JSONField):
    """JSON a person types that Postgres' jsonb can hold: no NUL or lone surrogate in any
    string, no Infinity, and not nested past what is readable."""

    MAX_DEPTH = 32

    def to_python(self, value: Any) -> Any:
        try:
            parsed = super().to_python(value)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="too_deep") from None
        except ValueError:  # json refuses an integer of more than 4,300 digits
            raise ValidationError(
                "Numbers in this JSON are at most 4,300 digits long.", code="too_long"
            ) from None
        self._check(parsed, 0)
        return parsed

    def bound_data(self, data: Any, initial: Any) -> Any:
        # A refused value is shown back as typed, never re-encoded (a lone surrogate can't be).
        try:
            bound = super().bound_data(data, initial)
        except (RecursionError, ValueError):
            return InvalidJSONInput(data)
        if isinstance(data, str) and not isinstance(bound, InvalidJSONInput):
            try:
                self._check(bound, 0)
            except ValidationError:
                return InvalidJSONInput(data)
        return bound

    def _check(self, value: Any, depth: int) -> None:
        if depth > self.MAX_DEPTH:
            raise ValidationError(
                f"This JSON is nested more than {self.MAX_DEPTH} levels deep.", code="too_deep"
            )
        if isinstance(value, str):
            try:
                validate_storable(value)
            except ValidationError:
                raise ValidationError(
                    "Text in this JSON cannot contain U+0000 or a lone surrogate.", code="text"
                ) from None
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("Numbers in this JSON must be finite.", code="infinite")
        elif isinstance(value, dict):
            for key, item in value.items():
                self._check(key, depth + 1)
                self._check(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                self._check(item, depth + 1)


MAX_TYPED_EMAIL_CHARS = 254  # RFC 5321's limit, for an address a person types
MAX_TYPED_ID_CHARS = 255
EMAIL_MESSAGE = "Enter an email address such as ann@example.com."


def returned_as_shown(posted: Any, shown: str) -> bool:
    """Whether a text box came back holding the value the page put in it: exactly, or as a
    browser returns a text box, which cannot hold line breaks and drops them."""
    return isinstance(posted, str) and posted in (shown, shown.replace("\r", "").replace("\n", ""))


class EndUserForm(forms.ModelForm):
    """Register a person like the runtime's User object: email required, the rest optional.

    Email and id are trimmed and limited as a person types them. A key that comes back as
    the page showed it, `stored_user_id` (the runtime's user_id this registration is for) or
    the person's own stored key in an edit, is kept byte for byte, whatever its length: it
    must equal the runtime's user_id to reach its memories."""

    email = forms.EmailField(
        max_length=MAX_TYPED_EMAIL_CHARS,
        error_messages={
            "invalid": EMAIL_MESSAGE,
            "unique": "A user with this email is registered already.",
            "max_length": f"An email address is at most {MAX_TYPED_EMAIL_CHARS} characters "
            "(this one has %(show_value)d).",
        },
    )
    external_id = forms.CharField(
        label="Id",
        required=False,
        max_length=MAX_TYPED_ID_CHARS,
        help_text=EndUser._meta.get_field("external_id").help_text,
        error_messages={
            "max_length": f"An id you type is at most {MAX_TYPED_ID_CHARS} characters (this "
            "one has %(show_value)d). A longer user_id the runtime stored is kept as it is: "
            "register it from its user page."
        },
    )
    additional_attributes = StorableJSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "invalid": 'Additional attributes are a JSON object, e.g. {"plan": "pro"}.'
        },
    )

    class Meta:
        model = EndUser
        fields = [
            "email",
            "external_id",
            "first_name",
            "last_name",
            "timezone",
            "additional_attributes",
        ]

    def __init__(self, *args: Any, stored_user_id: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: dict[str, str] = {}  # key field: the stored value it keeps
        for name in ("email", "external_id"):
            field = self.fields[name]
            shown = (
                field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
                if self.is_bound
                else self.initial.get(name)
            )
            stored = [key for key in (stored_user_id, getattr(self.instance, name)) if key]
            kept = next((key for key in stored if returned_as_shown(shown, key)), None)
            if kept is None:
                continue
            self.kept[name] = kept
            # Neither trimmed nor limited; the model still wants an email address in `email`.
            self.fields[name] = forms.CharField(
                label=field.label,
                required=field.required,
                strip=False,
                help_text=field.help_text,
                error_messages=field.error_messages,
                validators=[validate_storable],
            )

    def clean_email(self) -> str:
        return self.kept.get("email", self.cleaned_data["email"])

    def clean_external_id(self) -> str:
        return self.kept.get("external_id", self.cleaned_data["external_id"])

    def clean_additional_attributes(self) -> dict:
        value = self.cleaned_data.get("additional_attributes") or {}
        if not isinstance(value, dict):
            raise ValidationError('Additional attributes are a JSON object, e.g. {"plan": "pro"}.')
        aliases = value.get("aliases", [])
        # The user_id doctor matches stray user_ids against these: text only.
        if not isinstance(aliases, list) or not all(
            isinstance(alias, str) and alias.strip() for alias in aliases
        ):
            raise ValidationError(
                '"aliases" is a list of the other user_ids this person goes by, e.g. '
                '{"aliases": ["Annie", "ann.smith"]}.'
            )
        return value
