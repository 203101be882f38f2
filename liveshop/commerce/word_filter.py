"""Word filters for room chat (屏蔽词): one automaton over a room's and the chain's terms,
matched against text normalised so the usual evasions do not get through.

Pure: no I/O. Both the terms and the text go through `normalise()`: NFKD (full-width →
half-width, compatibility forms, accents split off), case folded, zero-width / format
characters and combining marks dropped, Latin look-alikes from Cyrillic and Greek mapped to
Latin, separators removed and repeated letters collapsed ("ｂ.ａ.ａ.d" → "bad"). A Latin term
must start and end at a word boundary of the text (a separator, the text's ends, or a
change of script), so "shiitake" and "glass" stay clean while "s h i t" does not; a
Chinese term matches anywhere. The automaton is pyahocorasick's (C, one pass over the
text); `WordFilter` is rebuilt whenever a list changes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick  # type: ignore[import-not-found]  # a C extension without type hints

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


def _script(c: str) -> int:
    """0 digit, 1 Latin (and other alphabets), 2 CJK and other scripts without spaces."""
    if c.isdigit():
        return 0
    return (
        1
        if c.isascii() or unicodedata.name(c, "").startswith(("LATIN", "GREEK", "CYRILLIC"))
        else 2
    )


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str  # letters and digits only, look-alikes mapped, repeats collapsed
    boundary: tuple[bool, ...]  # len(text) + 1: a word boundary before each position


_INVISIBLE_CLASS, _SEPARATOR = -2, -1
_classes: dict[str, int] = {}  # a character -> its class, worked out once per character


def _class(c: str) -> int:
    """_INVISIBLE_CLASS, _SEPARATOR, or the script of a letter or digit (`_script`)."""
    found = _classes.get(c)
    if found is None:
        if unicodedata.category(c) in _INVISIBLE:
            found = _INVISIBLE_CLASS
        elif not c.isalnum():
            found = _SEPARATOR
        else:
            found = _script(c)
        if len(_classes) < 100_000:
            _classes[c] = found
    return found


def normalise(raw: str) -> Normalised:
    # NFKD: compatibility forms folded and accents split off (then dropped as marks)
    folded = unicodedata.normalize("NFKD", raw).casefold().translate(CONFUSABLES)
    out: list[str] = []
    boundary = [True]
    pending = False  # a separator since the last letter kept
    last, last_script = "", -3
    for c in folded:
        kind = _classes.get(c)
        if kind is None:
            kind = _class(c)
        if kind < 0:
            if kind == _SEPARATOR:
                pending = True
            continue  # zero-width and combining characters join, never separate
        if c == last:
            if pending:
                boundary[-1] = True
            pending = False
            continue  # "baaad", "b.a.a.d": a repeat adds nothing
        if out:
            boundary[-1] = pending or kind != last_script
        out.append(c)
        boundary.append(False)
        pending = False
        last, last_script = c, kind
    boundary[-1] = True
    return Normalised("".join(out), tuple(boundary))


class WordFilter:
    """The terms of a room's list and the chain's, matched in one pass."""

    def __init__(self, terms: Iterable[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for term in terms:
            key = normalise(term).text
            if key:
                latin = (_script(key[0]) != 2, _script(key[-1]) != 2)
                self._automaton.add_word(key, (term, len(key), latin))
                self.size += 1
        if self.size:
            self._automaton.make_automaton()

    def find(self, text: str) -> str | None:
        """The first listed term the text contains (as the list spelled it), or None."""
        if not self.size:
            return None
        seen = normalise(text)
        for end, (term, length, (latin_start, latin_end)) in self._automaton.iter(seen.text):
            start = end + 1 - length
            if latin_start and not seen.boundary[start]:
                continue
            if latin_end and not seen.boundary[end + 1]:
                continue
            return str(term)
        return None
