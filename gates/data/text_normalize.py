"""Text normalisation for leak detection: NFKC, casefold, punctuation strip, whitespace collapse.

Two texts that differ only in Unicode compatibility forms (``ﬁ`` / ``fi``, full-width digits),
letter case, punctuation or spacing normalise to the same string::

    >>> normalize("  Hello,\\u00a0WORLD!! ")
    'hello world'
    >>> normalize("ﬁne—tuning") == normalize("fine tuning")
    True
    >>> words("Don't   panic.")
    ['don', 't', 'panic']

Punctuation is every character of a Unicode ``P*`` category (``!"#%&'()*,-./:;?@[\\]_{}`` in
ASCII, plus dashes, quotes and the like in every script); it becomes a space, so
``foo-bar`` and ``foo bar`` agree. Symbols (``$+<=>^`|~``) are kept. Pure ASCII text takes a
fast path (``bytes.translate``) that gives exactly the same result as the general one.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

__all__ = ["FOLD_TABLE", "fold_bytes", "is_punctuation", "normalize", "words"]


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


@cache
def _unicode_table() -> dict[int, str]:
    return {cp: " " for cp in range(sys.maxunicode + 1) if is_punctuation(chr(cp))}


# ASCII: lower-case letters, punctuation to space; a 256-byte table for bytes.translate.
_ASCII_TABLE = bytes(
    (0x20 if is_punctuation(chr(b)) else (b + 32 if 0x41 <= b <= 0x5A else b)) if b < 128 else b
    for b in range(256)
)
# The same, plus every ASCII character ``str.split`` treats as whitespace becomes a space, so the
# words of the folded bytes are exactly the ``b" "``-separated runs (see :func:`fold_bytes`).
FOLD_TABLE = _ASCII_FOLD = bytes(0x20 if chr(b).isspace() else c for b, c in enumerate(_ASCII_TABLE))
_nfkc = unicodedata.normalize


def _normalize_parts(text: str) -> str:
    """NFKC, casefold and punctuation to spaces; whitespace is not collapsed yet."""
    if text.isascii():
        # NFKC is the identity on ASCII and casefold is lower().
        return text.encode("ascii").translate(_ASCII_TABLE).decode("ascii")
    folded = _nfkc("NFKC", text).casefold()
    if not folded.isascii():
        folded = _nfkc("NFKC", folded)  # casefold can leave a non-NFKC sequence (e.g. "ǰ")
    return folded.translate(_unicode_table())


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (for n-grams)."""
    return _normalize_parts(text).split()


def normalize(text: str) -> str:
    """``text`` after NFKC, casefold, punctuation strip and whitespace collapse (see module doc)."""
    return " ".join(_normalize_parts(text).split())


def fold_bytes(text: str) -> bytes:
    """``text`` normalised to UTF-8 bytes whose space-separated runs are :func:`words` ``(text)``.

    Spaces are not collapsed on the ASCII fast path (``bytes.translate`` only), so callers split
    on runs of ``b" "``; the bytes never contain a newline, which callers use as a separator.
    """
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD)
    return " ".join(_normalize_parts(text).split()).encode("utf-8")
