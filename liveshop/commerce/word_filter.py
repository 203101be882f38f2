"""Word filters for room chat (屏蔽词): one automaton over a list's terms, matched against
text folded so the usual evasions do not get through.

Pure: no I/O. Both the terms and the text are folded (`fold()`): NFKD (full-width →
half-width, compatibility forms, accents split off), case folded, everything that is not a
letter or digit dropped (separators, punctuation, emoji, zero-width and format characters,
combining marks), Latin look-alikes from Cyrillic and Greek mapped to Latin, and repeated
letters collapsed ("ｂ.ａ.ａ.d" → "bad"). A Chinese term found in the folded text is a
match. A term that starts or ends with a Latin letter or a digit must also start and end at
a word boundary of the text (a separator, the text's ends, or a change of script), so
"shiitake", "glass" and "fish it" stay clean while "s h i t" does not: those candidates
are confirmed by a regular expression of the term as it may be spelled (each letter
repeated, separators between letters) over the text with only the invisible characters
removed.

Speed: `fold()` has no Python loop per character (one NFKD, one regex over a class of
ranges built once, the look-alike table only when the text has Cyrillic or Greek, repeats
found by comparing the text with itself shifted by one character as one big integer), the
automaton (ahocorasick_rs, Rust: a contiguous NFA over the folded text's UTF-8 bytes)
makes one pass, and only a Latin candidate costs a second regex. Most chat has no
candidate. `WordFilter` is rebuilt whenever a list changes.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable

import ahocorasick_rs

# Latin look-alikes (lower case, after NFKC and case folding): Cyrillic and Greek letters
# that readers take for these Latin ones.
CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "һ": "h",
        "ԛ": "q",
        "ԝ": "w",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ς": "s",
        "σ": "o",
    }
)
_INVISIBLE = frozenset(("Cf", "Cc", "Mn", "Me", "Cs", "Co"))  # format, control, marks
_BMP_END = 0x10000


def _drops_letter(cp: int) -> bool:
    return cp == 0x5F or not chr(cp).isalnum()


def _is_invisible(cp: int) -> bool:
    return unicodedata.category(chr(cp)) in _INVISIBLE


def _bmp_class(dropped: Callable[[int], bool]) -> re.Pattern[str]:
    """A regex of runs of the BMP characters `dropped` selects, as one class of ranges
    (compiled to a bitmap: one lookup per character)."""
    ranges: list[str] = []
    start = -1
    for cp in range(_BMP_END + 1):
        inside = cp < _BMP_END and dropped(cp)
        if inside and start < 0:
            start = cp
        elif not inside and start >= 0:
            ranges.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = -1
    return re.compile("[" + "".join(ranges) + "]+")


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(not a letter or digit, invisible) over the BMP: built once, on first use."""
    return _bmp_class(_drops_letter), _bmp_class(_is_invisible)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # emoji, CJK extensions: rare, one by one


def _drop_astral(s: str, dropped: Callable[[int], bool]) -> str:
    if s.isascii() or _ASTRAL.search(s) is None:
        return s
    return _ASTRAL.sub(lambda m: "" if dropped(ord(m.group())) else m.group(), s)


_LOOK_ALIKE_SCRIPTS = re.compile("[\u0370-\u052f]")  # Greek and Cyrillic blocks
_INVALID = 0x1FFFFF  # above U+10FFFF: a UTF-32 decoder with errors="ignore" drops it
_lane_masks: dict[int, tuple[int, int]] = {}  # n -> (low 31 bits, bit 31) of n lanes


def _drop_repeats(s: str) -> str:
    """`s` without each character equal to the one before it ("baaad" → "bad"). The text
    as UTF-32 is one integer; XOR with itself shifted by one character leaves a zero
    32-bit lane exactly where a character repeats (found with the carry-free zero-lane
    test), and those characters are made invalid code points that decoding drops."""
    n = len(s) - 1
    if n < 1:
        return s
    data = s.encode("utf-32-le")
    whole = int.from_bytes(data, "little")
    masks = _lane_masks.get(n)
    if masks is None:
        low = int.from_bytes(b"\xff\xff\xff\x7f" * n, "little")
        masks = (low, low ^ ((1 << (32 * n)) - 1))
        if len(_lane_masks) < 4096:
            _lane_masks[n] = masks
    low, top = masks
    diff = (whole >> 32) ^ (whole & (low | top))
    repeats = ((((diff & low) + low) | diff) & top) ^ top  # bit 31 of each zero lane
    if not repeats:
        return s
    whole |= ((repeats >> 31) * _INVALID) << 32
    return whole.to_bytes(len(data), "little").decode("utf-32-le", "ignore")


def _casefolded(raw: str) -> str:
    return (raw if raw.isascii() else unicodedata.normalize("NFKD", raw)).casefold()


def _look_alikes_mapped(s: str) -> str:
    if not s.isascii() and _LOOK_ALIKE_SCRIPTS.search(s):
        return s.translate(CONFUSABLES)
    return s


_ASCII_DROPPED = bytes(c for c in range(128) if _drops_letter(c))


def _letters(s: str) -> str:
    """`s` without the characters that are not letters or digits. The ASCII ones (most
    separators in chat) go in one `bytes.translate`; the regex then has few matches."""
    if s.isascii():
        return s.encode("ascii").translate(None, _ASCII_DROPPED).decode("ascii")
    s = s.encode("utf-8").translate(None, _ASCII_DROPPED).decode("utf-8")
    return _drop_astral(_patterns()[0].sub("", s), _drops_letter)


def fold(raw: str) -> str:
    """The letters and digits of `raw`, folded (see the module's docstring)."""
    s = raw
    if not s.isascii() and not unicodedata.is_normalized("NFKD", s):
        s = unicodedata.normalize("NFKD", s)  # first: "㊊" and "™" are symbols, not letters
    s = _letters(s)
    if s.isascii():
        return _drop_repeats(s.lower())
    s = s.casefold()
    if not s.isalnum():  # case folding may add marks ("İ" → "i̇")
        s = _letters(s)
    return _drop_repeats(_look_alikes_mapped(s))


def _visible(raw: str) -> str:
    """`raw` folded as `fold()` does but with its separators kept: what a word
    boundary is looked for in."""
    _, invisible = _patterns()
    s = _drop_astral(invisible.sub("", _casefolded(raw)), _is_invisible)
    return _look_alikes_mapped(s)


_LATIN_LETTERS = "a-z\u00df-\u024f\u0370-\u052f"  # what continues a Latin word (folded)


def _continues(c: str) -> str | None:
    """The class of characters that would continue a word ending (or starting) with `c`,
    None when `c` is not Latin or a digit (Chinese needs no word boundary)."""
    if "0" <= c <= "9":
        return "0-9"
    if c.isascii() or "\u00c0" <= c <= "\u052f":
        return _LATIN_LETTERS
    return None


@functools.lru_cache(maxsize=8192)
def _spelled(key: str) -> re.Pattern[str] | None:
    """The folded term `key` as it may be spelled at word boundaries of `_visible()` text
    (each letter repeated, separators between letters); None when it needs no boundary."""
    before, after = _continues(key[0]), _continues(key[-1])
    if before is None and after is None:
        return None
    letters = r"[\W_]*".join(f"{re.escape(c)}(?:[\\W_]*{re.escape(c)})*" for c in key)
    head = f"(?<![{before}])" if before else ""
    tail = f"(?![{after}])" if after else ""
    return re.compile(head + letters + tail)


class WordFilter:
    """The terms of one list, matched in one pass."""

    def __init__(self, terms: Iterable[str]) -> None:
        # folded key -> the first term spelled that way; matched over UTF-8 bytes (a
        # UTF-8 match starts and ends on a character boundary, and the str automaton's
        # conversion of indexes back to characters costs more than the search)
        found: dict[str, str] = {}
        for term in terms:
            key = fold(term)
            if key:
                found.setdefault(key, term)
        self._entries = list(found.items())
        self.size = len(self._entries)
        self._automaton = (
            ahocorasick_rs.BytesAhoCorasick(
                [key.encode() for key, _ in self._entries],
                implementation=ahocorasick_rs.Implementation.ContiguousNFA,
            )
            if self.size
            else None
        )

    def find(self, text: str) -> str | None:
        """The first listed term the text contains (as the list spelled it), or None."""
        if self._automaton is None:
            return None
        visible: str | None = None
        folded = fold(text).encode()
        for index, _start, _end in self._automaton.find_matches_as_indexes(
            folded, overlapping=True
        ):
            key, term = self._entries[index]
            spelled = _spelled(key)
            if spelled is None:
                return term
            if visible is None:
                visible = _visible(text)
            if spelled.search(visible):
                return term
        return None
