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
