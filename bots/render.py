"""Reply rendering shared by the chat platforms: cutting long text to a platform's limit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Break preferences, best first: a paragraph, a line, a sentence end, a clause, any space.
_BREAKS = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…。！？])[\"')\]»”’]*\s+"),
    re.compile(r"(?<=[,;:])\s+"),
    re.compile(r"\s+"),
)
# Characters that belong to the character before them: never start a chunk with one.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts message length."""
    return len(text.encode("utf-16-le")) // 2


def _fits(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The largest n such that measure(text[:n]) <= limit."""
    if measure is len:
        return min(len(text), limit)
    used = 0
    for i, ch in enumerate(text):
        used += measure(ch)
        if used > limit:
            return i
    return len(text)


def _attached(ch: str) -> bool:
    return (ch in _JOINERS or unicodedata.combining(ch) != 0
            or "\U0001f3fb" <= ch <= "\U0001f3ff")  # skin-tone modifiers


def _cut_point(text: str, end: int) -> tuple[int, int]:
    """Where to cut text whose first `end` characters fit: (chunk end, next chunk start)."""
    window = text[:end + 1]  # +1: a break right after the last fitting character counts
    for pattern in _BREAKS:
        found = [m for m in pattern.finditer(window) if 0 < m.start() <= end]
        # A break in the first half would leave a short chunk: try a finer kind of break.
        good = [m for m in found if m.start() >= end // 2]
        if good:
            return good[-1].start(), good[-1].end()
    for pattern in _BREAKS:  # no break late enough: take any break at all
        found = [m for m in pattern.finditer(window) if 0 < m.start() <= end]
        if found:
            return found[-1].start(), found[-1].end()
    cut = end
    while cut > 1 and _attached(text[cut]):  # keep emoji sequences and accents whole
        cut -= 1
    return cut, cut


def split_text(text: str, limit: int, *, measure: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into chunks of at most `limit` (by `measure`), on the best boundaries.

    Breaks fall on paragraphs, then lines, then sentence ends, then spaces; a single
    word longer than the limit is cut hard. Whitespace at the cut is dropped; blank
    text gives no chunks.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        end = max(1, _fits(rest, limit, measure))
        stop, start = _cut_point(rest, end)
        chunk = rest[:stop].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[start:].lstrip()
    return chunks
