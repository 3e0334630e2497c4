"""Reading the runtime's timestamps: epoch seconds by contract, anything by experience.

agno writes `created_at`/`updated_at` as epoch seconds, but rows written by other code (or
older versions) hold milliseconds, zero, negative or far-future values. Every one of them is
shown as stored with one sentence saying what is odd, and none may crash a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime's own range, in epoch seconds (years 1 to 9999).
FIRST_SECOND = -62_135_596_800
LAST_SECOND = 253_402_300_799
# Beyond this a value is taken for milliseconds: in seconds it would be after the year 5138.
MILLISECONDS_FROM = 100_000_000_000


@dataclass(frozen=True)
class Stamp:
    stored: int
    moment: datetime | None  # None: no time can be read from the value
    note: str = ""  # why the value is odd, for the person reading it


def read_stamp(value: int) -> Stamp:
    if abs(value) >= MILLISECONDS_FROM:
        seconds = value // 1000
        if FIRST_SECOND <= seconds <= LAST_SECOND:
            note = "stored in milliseconds; the runtime writes seconds"
            return Stamp(value, _moment(seconds), note)
        return Stamp(value, None, f"stored as {value}: not a time the runtime writes")
    if not FIRST_SECOND <= value <= LAST_SECOND:
        return Stamp(value, None, f"stored as {value}: not a time the runtime writes")
    moment = _moment(value)
    if value == 0:
        return Stamp(value, moment, "stored as 0: the runtime wrote no time")
    if value < 0:
        return Stamp(value, moment, "stored before 1970: the runtime writes the current time")
    return Stamp(value, moment)


def _moment(seconds: int) -> datetime:
    # Arithmetic rather than fromtimestamp(): no platform limit below 1970 or past 2038.
    return EPOCH + timedelta(seconds=seconds)
