"""The sensitive-data finder (memories.sensitive), its flags (memories.flags) and its page
(memories.sensitive_views): scan in batches, list what is flagged, delete it by click."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from memories import flags, runtime
from memories.models import AuditEvent, SensitiveFlag, SensitiveScan
from memories.sensitive import sensitive_kinds
from studio.database_urls import psycopg_connect
from tests.factories import HTMX, make_memory, memory_texts, table_row

PLANTED = {
    "My AWS key is AKIAIOSFODNN7EXAMPLE": ["secret"],
    "GitHub token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB for the CI": ["secret"],
    "Slack bot xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx": ["secret"],
    "Her password is Tulip-2024!": ["password"],
    "Paid with card 4111 1111 1111 1111.": ["card"],
    "Card 5500-0000-0000-0004 expires 12/27": ["card"],
    "SSN 123-45-6789 for the tax form": ["ssn"],
    "Refund to IBAN DE89 3704 0044 0532 0130 00": ["iban"],
    "Call him at +1 415-555-2671 after lunch": ["phone"],
    # Look alike but fail their check: not flagged.
    "Paid with card 4111 1111 1111 1112.": [],
    "SSN 000-12-3456 was rejected": [],
    "IBAN DE00 3704 0044 0532 0130 00 bounced": [],
    # Ordinary memories.
    "Renewal is in November.": [],
    "Prefers concise answers.": [],
    "Has 12 seats on the Business plan since 2021-03-04.": [],
    "Order #48213 shipped on Tuesday.": [],
}


@pytest.mark.parametrize(("text", "kinds"), PLANTED.items())
def test_the_finder_flags_the_planted_corpus_and_leaves_ordinary_memories(text, kinds):
    assert sensitive_kinds(text) == kinds


def test_the_sensitive_list_scans_in_batches_and_deletes_by_click(
    editor_client, viewer_client, agent
):
    planted = {text: make_memory(agent, f"user{n % 3}", text) for n, text in enumerate(PLANTED)}
    url = reverse("memories:sensitive", args=[agent.slug])
    assert "Not scanned yet" in editor_client.get(url).content.decode()
    assert viewer_client.post(reverse("memories:scan", args=[agent.slug])).status_code == 403
    assert not SensitiveScan.objects.exists()
    batches = 0
    while True:
        state = flags.scan_next_batch(agent, batch=5)
        batches += 1
        if state.finished_at:
            break
    assert batches == 4 and state.scanned == len(PLANTED)
    flagged = set(SensitiveFlag.objects.filter(agent=agent).values_list("memory_id", flat=True))
    assert flagged == {planted[text].memory_id for text, kinds in PLANTED.items() if kinds}
    response = editor_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Renewal is in November." not in page
    assert '<span class="badge danger">Password</span>' in table_row(page, "Tulip-2024!")
    assert '<span class="badge danger">Card number</span>' in table_row(
        page, "4111 1111 1111 1111."
    )
    password = planted["Her password is Tulip-2024!"].memory_id
    done = editor_client.post(
        reverse("memories:delete_flagged", args=[agent.slug]), {"memory_ids": [password]}, **HTMX
    )
    assert done.status_code == 200
    assert json.loads(done["HX-Trigger"])["toast"]["message"] == "1 flagged memory deleted."
    assert "Tulip-2024!" not in done.content.decode()
    assert password not in runtime.memories_by_id(agent, [password])
    assert not SensitiveFlag.objects.filter(memory_id=password).exists()
    assert SensitiveFlag.objects.filter(agent=agent).count() == len(flagged) - 1
    ordinary = planted["Renewal is in November."].memory_id
    refused = editor_client.post(
        reverse("memories:delete_flagged", args=[agent.slug]),
        {"memory_ids": [ordinary]},
        **HTMX,
    )
    assert refused.status_code == 400 and runtime.memories_by_id(agent, [ordinary])
    event = AuditEvent.objects.get(action="sensitive.deleted")
    assert event.details == {"count": 1, "memory_ids": [password]}
    assert "Tulip" not in json.dumps(event.details) and "4111" not in json.dumps(event.details)


def test_a_viewer_reads_the_sensitive_page_but_changes_nothing(viewer_client, agent):
    memory = make_memory(agent, "ann", "Her password is Tulip-2024!")
    flags.scan_user(agent, "ann")
    response = viewer_client.get(reverse("memories:sensitive", args=[agent.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    # The list shows what matched, masked; only an Editor's page can reveal the whole text.
    assert "Her password is Tul••••" in page and "Tulip-2024!" not in page
    assert "Delete selected" not in page and reverse("memories:scan", args=[agent.slug]) not in page
    writes = [
        (reverse("memories:delete_flagged", args=[agent.slug]), {"memory_ids": [memory.memory_id]}),
        (reverse("memories:scan", args=[agent.slug]), {}),
    ]
    for url, data in writes:
        assert viewer_client.post(url, data).status_code == 403, url
    assert memory_texts(agent, "ann") == ["Her password is Tulip-2024!"]
    assert SensitiveFlag.objects.get(agent=agent).memory_id == memory.memory_id
    assert not SensitiveScan.objects.exists() and not AuditEvent.objects.exists()


def test_secret_detection_survives_threads_and_a_reset_detect_secrets():
    """The detectors are configured once a process and shared: scans and masked views from
    many threads at once all find the key, and settings emptied by other code are restored."""
    from concurrent.futures import ThreadPoolExecutor

    from detect_secrets.settings import cache_bust, configure_settings_from_baseline

    from memories import sensitive

    text = "My AWS key is AKIAIOSFODNN7EXAMPLE"
    cache_bust()
    configure_settings_from_baseline({"plugins_used": []})  # as other code might leave them
    assert sensitive.sensitive_kinds(text) == ["secret"]

    def both(_: int) -> tuple[list[str], str]:
        return sensitive.sensitive_kinds(text), sensitive.masked(text)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(both, range(200)))
    assert all(kinds == ["secret"] and shown.endswith(sensitive.MASK) for kinds, shown in results)


def test_texts_too_short_in_digits_for_any_phone_number_skip_the_matcher():
    import phonenumbers
    from phonenumbers import PhoneMetadata

    from memories.sensitive import MIN_PHONE_DIGITS

    def shortest(metadata, country_code: int) -> int:
        lengths = [n for n in metadata.general_desc.possible_length or () if n > 0]
        return len(str(country_code)) + min(lengths) if lengths else 99

    regions = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    fewest = min(shortest(md, md.country_code) for md in regions)
    fewest = min(
        fewest,
        *(
            shortest(PhoneMetadata.metadata_for_nongeo_region(cc), cc)
            for cc in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
        ),
    )
    assert fewest >= MIN_PHONE_DIGITS
    assert "phone" in sensitive_kinds("Call her on +683 4002 after six.")  # Niue: 7 digits
    assert "phone" in sensitive_kinds("Ring +４９ ３０ ９０１８２０ at work.")  # full-width
    assert "phone" not in sensitive_kinds("Room 12, floor 3, desk 4.")


@pytest.mark.django_db(transaction=True)  # the table is dropped from another connection
def test_the_scan_command_reports_an_agent_whose_table_went_midway_and_scans_the_rest(
    make_agent,
):
    gone, kept = make_agent(slug="gone"), make_agent(slug="kept")
    for agent in (gone, kept):
        make_memory(agent, "ann", "Card 4111 1111 1111 1111.")
        make_memory(agent, "ann", "Likes tea.")
    flags.scan_next_batch(gone, batch=1)  # mid-walk: one of two scanned
    with psycopg_connect(connection.settings_dict) as owner:
        owner.execute(f'DROP TABLE "{gone.db_schema}".agno_memories')
    with pytest.raises(CommandError, match="stopped for gone"):
        call_command("scan_sensitive")
    assert SensitiveScan.objects.get(agent=kept).finished_at is not None
    assert SensitiveFlag.objects.filter(agent=kept).count() == 1
