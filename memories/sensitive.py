"""Finding what memories must never hold: secrets, card numbers, national ids, phone numbers.

Maintained detectors do the recognising: detect-secrets for keys and tokens (its specific
detectors; the high-entropy ones flag ordinary prose), python-stdnum for check digits (card
numbers by Luhn, US social security numbers, IBANs) and phonenumbers for phone numbers.
Only "my password is …" in prose has no maintained detector, so one small rule covers it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Iterable, Iterator

KINDS = {
    "secret": "API key or token",
    "password": "Password",
    "card": "Card number",
    "ssn": "Social security number",
    "iban": "Bank account (IBAN)",
    "phone": "Phone number",
}


def kind_label(kind: str) -> str:
    """A flag's kind as a badge names it. A kind the studio no longer knows (a stored flag
    from a detector since renamed or removed) shows as stored rather than failing the page."""
    return KINDS.get(kind, kind)


# detect-secrets' specific detectors; its entropy detectors would flag every sentence.
SECRET_DETECTORS = [
    "AWSKeyDetector",
    "ArtifactoryDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SoftlayerDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
]
PASSWORD_IN_PROSE = re.compile(
    r"\b(?:password|passwd|passcode|pass phrase|passphrase|pin code|api[ _-]?key|secret key|"
    r"access token)\b[^.\n]{0,20}?\b(?:is|was|=|:)\s*[\"'“]?(?=\S*[A-Za-z0-9])(\S{4,})",
    re.IGNORECASE,
)
CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
SSN_CANDIDATE = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


@functools.lru_cache(maxsize=1)
def _secret_settings() -> dict:
    return {"plugins_used": [{"name": name} for name in SECRET_DETECTORS]}


# detect_secrets keeps its plugins in process-wide settings. Entering transient_settings for
# every memory rebuilt them and emptied its caches twice (1.5 ms a scan, most of an inline
# edit's), and two threads doing so at once could leave a worker with no plugins at all.
# So they are configured once, every use holds this lock, and a configuration found
# emptied (by anything else in the process) is made again.
_DETECTORS_LOCK = threading.Lock()


@contextlib.contextmanager
def _secret_detectors() -> Iterator[None]:
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline, get_settings

    with _DETECTORS_LOCK:
        if set(get_settings().plugins) != set(SECRET_DETECTORS):
            cache_bust()
            configure_settings_from_baseline(_secret_settings())
        yield


def _secrets(text: str) -> bool:
    from detect_secrets.core.scan import scan_line

    with _secret_detectors():
        return any(True for line in text.splitlines() for _ in scan_line(line))


def _cards(text: str) -> bool:
    from stdnum import luhn

    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and len(set(digits)) > 1:
            return True
    return False


def _ssns(text: str) -> bool:
    from stdnum.us import ssn

    return any(ssn.is_valid(m.group()) for m in SSN_CANDIDATE.finditer(text))


def _ibans(text: str) -> bool:
    from stdnum import iban

    return any(iban.is_valid(m.group()) for m in IBAN_CANDIDATE.finditer(text))


# No valid number has fewer digits, country code included (6: +49 and a 4-digit number;
# tests/test_sensitive.py works it out from phonenumbers' own metadata). A text with fewer
# is not handed to the matcher, which took most of the scan's time on every add and edit.
MIN_PHONE_DIGITS = 6
ENOUGH_DIGITS = re.compile(rf"(?:\D*\d){{{MIN_PHONE_DIGITS}}}")


def _phones(text: str) -> bool:
    if not ENOUGH_DIGITS.match(text):
        return False
    import phonenumbers

    # Numbers written with a country code anywhere, or US-style local ones.
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID)
    return any(True for _ in matcher)


def sensitive_kinds(text: str) -> list[str]:
    """The kinds of sensitive data a memory's text seems to hold, in KINDS order."""
    found = []
    if _secrets(text):
        found.append("secret")
    if PASSWORD_IN_PROSE.search(text):
        found.append("password")
    if _cards(text):
        found.append("card")
    if _ssns(text):
        found.append("ssn")
    if _ibans(text):
        found.append("iban")
    if _phones(text):
        found.append("phone")
    return found


def sensitive_spans(text: str) -> list[tuple[int, int]]:
    """Where in the text the sensitive parts are, merged, for masking them on screen."""
    import phonenumbers
    from detect_secrets.core.scan import scan_line
    from stdnum import iban, luhn
    from stdnum.us import ssn

    spans = [m.span(1) for m in PASSWORD_IN_PROSE.finditer(text)]
    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and len(set(digits)) > 1:
            spans.append(match.span())
    spans += [m.span() for m in SSN_CANDIDATE.finditer(text) if ssn.is_valid(m.group())]
    spans += [m.span() for m in IBAN_CANDIDATE.finditer(text) if iban.is_valid(m.group())]
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID)
    spans += [(m.start, m.end) for m in matcher]
    with _secret_detectors():
        offset = 0
        for line in text.splitlines(keepends=True):
            for found in scan_line(line.rstrip("\r\n")):
                value = found.secret_value or ""
                at = line.find(value) if value else -1
                if at >= 0:
                    # Some detectors report only a prefix (ghp_…): mask the whole token.
                    start, end = at, at + len(value)
                    while start > 0 and not line[start - 1].isspace():
                        start -= 1
                    while end < len(line) and not line[end].isspace():
                        end += 1
                    spans.append((offset + start, offset + end))
            offset += len(line)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


MASK = "••••"


def masked(text: str) -> str:
    """The text with each sensitive part cut to its first third and "••••" (Tulip-••••)."""
    shown, last = [], 0
    for start, end in sensitive_spans(text):
        keep = (end - start) // 3
        shown.append(text[last : start + keep] + MASK)
        last = end
    shown.append(text[last:])
    return "".join(shown)


def scan(texts: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """memory_id -> kinds, for the memories that hold anything."""
    return {memory_id: kinds for memory_id, text in texts if (kinds := sensitive_kinds(text))}
