"""Showing user-derived strings (file, task, worker, class names) without letting them act.

A name read from a file is data; printed raw it can act: an ANSI/OSC escape sequence recolours or retitles a
terminal (or hides what follows), a newline splits one ``error:`` line in two, bidirectional-override
characters make text read backwards, and ``<a href>`` in a plotly label or an HTML report becomes a live link.
These helpers turn such a string into text that shows what it is:

* :func:`escape_controls` for terminals and one-line messages: every control character (C0, DEL, C1), every
  bidirectional/format control and the line/paragraph separators become visible escapes (``\\n``, ``\\x1b``,
  ``\\u202e``); a backslash is left as it is.
* :func:`html_text` for plotly labels and HTML: ``&``, ``<`` and ``>`` as entities (plotly and browsers show
  them as the characters), control characters escaped as above.

The dashboard's Markdown escaping lives with the pages (``pages/common.py``: ``safe``); plotly figures are
made safe as a whole by :func:`deem_core.plots.safety.escape_figure`.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from typing import Any

__all__ = ["INVISIBLE_RE2", "counted", "escape_controls", "html_text", "in_number", "is_are", "is_invisible", "names_text",
           "middle_cut", "natural_positions", "quoted_name", "shortened"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    # (past U+FFFF as Python writes it, \U and eight digits: U+E0041, a tag character, read "\ue0041", which is U+E004
    # and a "1"; attack round 51)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _is_control(char: str) -> bool:
    # Cc: C0, DEL, C1 (ESC starts ANSI/OSC sequences, 0x9b is a one-byte CSI); Cf: bidi overrides, zero-width
    # characters; Zl/Zp: U+2028/U+2029, which some terminals and editors treat as line breaks; Cs: a lone surrogate
    # (half of a character), which no UTF-8 output can even print
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs")


#: characters drawn as nothing that are no format (Cf) character: the default-ignorable ones of Unicode's
#: DerivedCoreProperties outside Cf (the combining grapheme joiner, variation selectors, Hangul fillers, Khmer inherent
#: vowels, Mongolian variation selectors, tags and their supplement) and the blank Braille pattern. "yes" with one of
#: them was a second class that read the same, without a word (attack round 28)
_INVISIBLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180F, 0x2065, 0x2800, 0x3164, 0xFFA0})
#: and the control characters that are no space (NUL, the C0 and C1 controls): "x" and "x\0" from a Parquet file were
#: two classes that read the same, without a word (attack round 41)
_INVISIBLE_RANGES = ((0x00, 0x08), (0x0E, 0x1B), (0x7F, 0x84), (0x86, 0x9F),
                     (0x180B, 0x180D), (0xFE00, 0xFE0F), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF))
#: the ASCII characters of :data:`_INVISIBLE_RANGES`, as one character class of RE2
ASCII_CONTROLS_RE2 = "[\\x{0000}-\\x{0008}\\x{000E}-\\x{001B}\\x{007F}]"


def is_invisible(char: str) -> bool:
    """Whether ``char`` is drawn as nothing though it is no format character (:data:`_INVISIBLE`)."""
    code = ord(char)
    return code in _INVISIBLE or any(low <= code <= high for low, high in _INVISIBLE_RANGES)


#: the format characters and those of :func:`is_invisible`, as one character class of RE2 (Arrow's regular
#: expressions), for the vectorised reads
INVISIBLE_RE2 = ("[\\p{Cf}" + "".join(f"\\x{{{code:04X}}}" for code in sorted(_INVISIBLE))
                 + "".join(f"\\x{{{low:04X}}}-\\x{{{high:04X}}}" for low, high in _INVISIBLE_RANGES) + "]")


def escape_controls(value: Any) -> str:
    """``str(value)`` with every control or format character shown as an escape, on one line."""
    text = str(value)
    if text.isprintable():  # fast path: str.isprintable is False for every Cc, Cf, Zl and Zp character
        return text
    return "".join(_visible(c) if _is_control(c) else c for c in text)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with its noun in the number it takes: "1 gold label", "2,000 gold labels" ("1 gold labels match tasks"
    stood on the Data page; read 43). One wording for the engine and the pages. A count that is no whole number
    (None, NaN, 2.5) is written as it is, with the plural, never raising: a message is not worth a crash (attack
    round 49)."""
    many = plural or noun + "s"
    try:
        whole = int(n)
        fraction = isinstance(n, numbers.Number) and whole != n
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return f"{n} {many}"
    if fraction:
        return f"{n:,} {many}" if isinstance(n, float) else f"{n} {many}"
    return f"{whole:,} {noun if whole == 1 else many}"


def in_number(n: int, phrase: str) -> str:
    """``phrase`` with each "(s)" put in the number ``n`` takes ("answer(s) with an empty label" -> "answer with ..."
    for 1, "answers with ..." otherwise); "(is)"/"(are)"-style verbs are written out by the caller."""
    return phrase.replace("(s)", "" if _is_one(n) else "s")


def is_are(n: int) -> str:
    """The verb "to be" in the number ``n`` takes."""
    return "is" if _is_one(n) else "are"


def _is_one(n: object) -> bool:
    """Whether ``n`` is the number 1 (None, NaN and other things that are no number are not)."""
    try:
        return int(n) == 1 and (not isinstance(n, numbers.Number) or n == 1)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return False


def names_text(names: list, most: int = 8, longest: int = 40, total: int | None = None, quote: bool = True) -> str:
    """Names for a line of text: the first ``most``, each at most ``longest`` characters (eight worker names of 10,000
    characters made an 80,000-character warning; attack round 45), then how many more (of ``total`` names where
    ``names`` is only their head); each name in quotes when one holds a comma, " and ", a semicolon or a parenthesis
    (:func:`_ambiguous`; workers named "w01, w02" and "w05, w06" in a copying group read as four innocent workers
    among the copiers; attack round 46; ``quote=False``: names quoted already)."""
    total = len(names) if total is None else int(total)
    if total == most + 1:  # ("u36, u37, u38 and 1 more": the one more takes no more room; walkthrough 87)
        most += 1
    shown = [shortened(name, longest) for name in names[:most]]
    if quote and _ambiguous(shown):
        shown = [quoted_name(name) for name in shown]
    return ", ".join(shown) + (f" and {total - len(shown):,} more" if total > len(shown) else "")


def _ambiguous(names: list[str]) -> bool:
    """Whether names joined by ", " could be read as other names or other text (one holds a comma, " and ", a “ ”
    mark, or a semicolon or parenthesis: a list of groups is joined by "; " with each group's figures in parentheses,
    and a worker named ``x; 2 workers: alice`` read as a second copying group; read 41)."""
    return any(any(mark in name for mark in (",", " and ", "“", "”", ";", "(", ")")) for name in names)


def quoted_name(name: str) -> str:
    """``name`` in “ ”, each “ or ” inside it doubled as CSV doubles its quotes (a worker named ``w01”, “w02`` read as
    two innocent workers in the quoted list; attack round 47; escapes of every quote mark made the names differ from
    the worker column's; walkthrough 88)."""
    return "“" + name.replace("“", "““").replace("”", "””") + "”"


def all_names_text(names: list, most_chars: int = 2_000) -> str:
    """Every name whole, joined by ", " (in quotes when one holds a comma, " and ", a semicolon or a parenthesis),
    while that stays within ``most_chars`` characters; past it :func:`names_text` (the first eight, each cut to 40,
    then how many more)."""
    names = [str(name) for name in names]
    if sum(len(name) + 4 for name in names) <= most_chars:
        return ", ".join(quoted_name(name) for name in names) if _ambiguous(names) else ", ".join(names)
    return names_text(names)


def shortened(value: Any, most: int = 24) -> str:
    """``value`` as text an error message repeats: at most ``most`` characters, the rest as "..." (a
    100,000-character option value was printed whole; attack round 15)."""
    text = str(value)
    return text if len(text) <= most else text[:most - 4] + "..."


def quoted_list(values: Any, most: int = 8, longest: int = 40) -> str:
    """Column or control names for a message: the first ``most``, each quoted and cut to about ``longest`` characters
    (head and tail), then how many more. Columns of 2,400 characters quoted whole made a 73 KB error line (the CLI's)
    and a 73,466-character warning on the Data page (walkthrough 113)."""
    values = list(values)
    shown = ", ".join(repr(middle_cut(str(v), longest)) for v in values[:most])
    return shown + (f" and {len(values) - most:,} more" if len(values) > most else "")


def middle_cut(text: str, most: int) -> str:
    """``text`` of at most about ``most`` characters: its head and its tail around "…" where it is longer. Names that
    differ at their end (w…w10, w…w11; image URLs) read alike cut after their head (walkthroughs 105 and 107)."""
    if len(text) <= most:
        return text
    tail = max(1, most // 3)
    return f"{text[:max(1, most - tail - 1)]}…{text[-tail:]}"


def html_text(value: Any) -> str:
    """A user string for plotly labels or HTML: ``&``, ``<``, ``>`` as entities, control characters escaped."""
    text = escape_controls(value)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def in_natural_order(frame: Any) -> Any:
    """``frame`` with its rows in the natural order of its index read as text (:func:`natural_positions`): the order
    every label file is written and shown in, the dashboard's and the command line's alike (the command line wrote
    q0, q1, q10, q100 where the dashboard's download read q0, q1, q2; walkthrough 108). An integer index (already
    ordered as numbers) is returned as it is."""
    import pandas as pd  # noqa: PLC0415

    if pd.api.types.is_integer_dtype(frame.index) or len(frame) < 2:
        return frame
    return frame.iloc[natural_positions(frame.index)]


def natural_positions(names: Any) -> Any:
    """Positions that put ``names`` in their natural order read as text: "q2" before "q10" (text order puts "q10"
    first). The first run of digits counts as a number; names without one come first; ties keep their order.
    Whole numbers (an integer array or index) keep their order as numbers. Codes whose digits run into letters
    (hex ids: most numbered names with a letter right after their first digits) are in text order."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    values = pd.Index(names)
    if pd.api.types.is_integer_dtype(values) or len(values) < 2:
        return np.argsort(np.asarray(values), kind="stable") if len(values) else np.arange(0)
    # ASCII digits only, across lines: "\\d" took an Arabic-Indic or full-width digit ("٣", "１") that to_numeric
    # cannot read, and one such task id made a run's Train and Results pages fail (attack round 52)
    text = pd.Series(values.astype(str))
    parts = text.str.extract(r"^([^0-9]*)([0-9]{0,18})(.*)$", flags=re.DOTALL, expand=True)
    numbered = parts[1] != ""
    # codes, not counters: where most numbered names run their first digits straight into a letter (Toloka's hex
    # worker ids "0a05...", "21b8...", "0340f..." were put in the order of 0, 21, 340: random to a reader;
    # walkthrough 126), the names are in text order
    if numbered.any() and parts[2][numbered].str.match(r"[A-Za-z]").mean() > 0.5:
        return np.argsort(text.to_numpy(dtype=object), kind="stable")
    keys = pd.DataFrame({"head": parts[0], "number": pd.to_numeric(parts[1].where(numbered)),
                         "rest": parts[2]})
    return keys.sort_values(["head", "number", "rest"], kind="stable", na_position="first").index.to_numpy()
