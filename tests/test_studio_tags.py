"""The template tags and filters of memories/templatetags/studio.py."""

from __future__ import annotations

from memories.templatetags.studio import relative


def test_relative_times_read_like_a_person_would_say_them():
    assert [
        relative(s)
        for s in (5, 90, 7200, 86_400 * 3, 86_400 * 20, 86_400 * 70, 86_400 * 800, -7200)
    ] == [
        "just now",
        "1 minute ago",
        "2 hours ago",
        "3 days ago",
        "2 weeks ago",
        "2 months ago",
        "2 years ago",
        "in 2 hours",
    ]


def test_any_stored_time_renders_without_an_error():
    from memories.templatetags.studio import when

    for stamp in (
        -6_500_000_000_000 // 1000,
        -62_135_596_800,
        -62_135_596_801,
        253_402_300_799,
        253_402_300_800,
        10**11 - 1,
        -(10**11) + 1,
        10**15,
        -(10**15),
        0,
    ):
        html = str(when(stamp, "Pacific/Kiritimati"))
        assert "<time" in html or "not a time the runtime writes" in html, stamp
