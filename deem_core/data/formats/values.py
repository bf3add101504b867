"""Cell values: the one set of missing-label spellings, and the typing of text cells.

Missing labels
--------------
A label (or truth) cell is *missing* when it is empty, blank, or one of the spellings software writes for
"no value", compared without case and surrounding spaces: ``nan``, ``null``, ``none``, ``na``, ``n/a``,
``<na>``, ``#n/a`` (so ``None``, ``NONE``, ``NaN``, ``N/A``, ``#N/A`` ... alike). The same set holds for
annotation files, truth files and DataFrames (where ``None`` and NaN are missing too). Missing answers are
dropped with a warning that counts the answers *and* the tasks left with no answer at all;
``keep_missing=True`` (CLI ``--keep-missing-labels``) keeps the spellings as labels ("N/A" can be a real
answer); an empty cell is never a label.

Typing
------
Text cells of one role (task, worker, label) become integers when *every* value is a canonical integer
(``0|-?[1-9][0-9]*`` within 64 bits), else stay text; a cell that the spreadsheet-safe export neutralised
(``'`` then one of ``= + - @`` tab CR LF) gets its quote back. Typing works on the distinct values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deem_core.data.annotations import DataError
from deem_core.data.export import FORMULA_QUOTED, INNER_FORMULA_QUOTED
from deem_core.data.text import escape_controls

__all__ = ["MISSING_LABELS", "SPACES", "blank_text", "check_value_lengths", "is_missing_text", "missing_mask", "plain", "type_text",
           "type_uniques", "value_too_long"]

#: spellings of "no value" (lower case; compared case-insensitively after stripping spaces)
MISSING_LABELS = frozenset({"nan", "null", "none", "na", "n/a", "<na>", "#n/a"})

_INT_PATTERN = r"(?:0|-?[1-9][0-9]*)"


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (messages show ``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def is_missing_text(text: str, keep_markers: bool = False) -> bool:
    stripped = text.strip()
    return not stripped or (not keep_markers and stripped.lower() in MISSING_LABELS)


def _missing_uniques(uniques: pd.Index | np.ndarray, keep_markers: bool) -> np.ndarray:
    out = np.zeros(len(uniques), dtype=bool)
    for position, value in enumerate(uniques):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
            out[position] = True
        elif isinstance(value, str):
            out[position] = is_missing_text(value, keep_markers)
    return out


#: every character ``str.isspace()`` is true of (a test checks the list against Python's): a value of only these is
#: blank, as ``value.strip() == ""`` says
SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + \
    "\u2028\u2029\u202f\u205f\u3000"
_BLANK = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACES) + "]*$"


def blank_text(values: Any) -> np.ndarray:
    """(n,) bool: True where a text value is empty or only :data:`SPACES` (``str.strip() == ""``), in one pass of
    Arrow's regex engine: a Python loop over the distinct ids of each chunk took 7.9 of 34 s reading 6 million
    answers (both ids distinct per chunk)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    held = getattr(values, "array", None)
    if hasattr(held, "__arrow_array__"):  # Arrow strings already (a CSV chunk's): no Python object made
        array = pa.array(held).cast(pa.large_string())
    else:
        array = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return np.asarray(pc.match_substring_regex(array, _BLANK).fill_null(True), dtype=bool)


def missing_mask(values: pd.Series, keep_markers: bool = False) -> np.ndarray:
    """(n,) bool: True where ``values`` holds a missing label (see the module docstring). Works on the
    distinct values, so a column of millions of cells costs one pass of factorize."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        flags = _missing_uniques(values.cat.categories, keep_markers)
        out = np.where(codes < 0, True, flags[np.maximum(codes, 0)] if len(flags) else True)
        return np.asarray(out, dtype=bool)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        return values.isna().to_numpy()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    flags = _missing_uniques(np.asarray(uniques, dtype=object), keep_markers)
    if not len(flags):
        return codes < 0
    return np.where(codes < 0, True, flags[np.maximum(codes, 0)])


def type_uniques(uniques: pd.Series) -> np.ndarray:
    """Distinct text values -> ints when all non-empty ones are canonical 64-bit integers, else text with
    the spreadsheet quote removed; '' stays ''."""
    uniques = uniques.astype(str)
    nonempty = (uniques != "").to_numpy()
    candidates = uniques[nonempty]
    if len(candidates) and bool(candidates.str.fullmatch(_INT_PATTERN).all()):
        try:
            ints = candidates.astype("int64").to_numpy()
        except (OverflowError, ValueError):  # beyond 64 bits: stays text
            pass
        else:
            if nonempty.all():
                return ints
            out = np.empty(len(uniques), dtype=object)
            out[:] = ""
            out[nonempty] = ints.tolist()
            return out
    quoted = uniques.str.contains("'", regex=False).to_numpy()
    if quoted.any():
        uniques = uniques.copy()
        uniques[quoted] = (uniques[quoted].str.replace(INNER_FORMULA_QUOTED, "", regex=True)
                           .str.replace(FORMULA_QUOTED, "", regex=True))
    return uniques.to_numpy(dtype=object)


def type_text(values: pd.Series) -> pd.Series:
    """Text cells of one role (plain or categorical) -> typed values (see :func:`type_uniques`). A categorical
    stays categorical (typed categories, a few bytes per row): millions of answers are never turned into
    millions of Python objects here."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
        if not used.all():  # dropped rows' values must not decide the type (pandas' took 1.8 s on 6 million
            # answers where all were used: checked first)
            values = values.cat.remove_unused_categories()
            codes = values.cat.codes.to_numpy()
        texts = pd.Series(values.cat.categories.astype(str), dtype=object)
        typed = type_uniques(texts)
        # typing can merge two categories ("'=x" and "=x" are one value): renumber on the typed values
        merged, distinct = pd.factorize(pd.Series(typed, dtype=typed.dtype), use_na_sentinel=False)
        new_codes = np.where(codes < 0, -1, merged[np.maximum(codes, 0)] if len(merged) else -1)
        categories = pd.Index(np.asarray(distinct, dtype=typed.dtype))
        out = pd.Series(pd.Categorical.from_codes(new_codes, categories), index=values.index)
        return _said_merged(out, texts, merged, len(distinct))
    codes, uniques = pd.factorize(values.astype(str))
    texts = pd.Series(uniques, dtype=object)
    typed = type_uniques(texts)
    out = pd.Series(typed[codes] if len(typed) else np.array([], dtype=object), index=values.index)
    if len(typed):
        merged, distinct = pd.factorize(pd.Series(typed, dtype=object), use_na_sentinel=False)
        out = _said_merged(out, texts, merged, len(distinct))
    return out


#: texts of one group typing made one value named in its warning (the rest counted)
MERGED_SHOWN = 3


def _said_merged(out: pd.Series, texts: pd.Series, merged: np.ndarray, n_distinct: int) -> pd.Series:
    """``out`` with ``attrs["merged"]``: up to three groups of the texts typing made one value ("=x" and "'=x": the
    quote a spreadsheet-safe download adds is taken off), said by the read (a file's own "=a" and "'=a" were one
    worker without a word; attack round 43)."""
    if n_distinct == len(texts):
        return out
    counts = np.bincount(merged)
    shared = np.flatnonzero(counts > 1)  # (only the merged values: a groupby of every text took 19 s on 2 million)
    first = shared[:3]
    # a few texts of each group, and the group's size: one worker written 2^18 ways made a warning of 4.7 million
    # characters, stored with the run, that froze the Data page of everyone opening its link (attack round 44)
    out.attrs["merged"] = [sorted(texts.to_numpy()[merged == code].tolist())[:MERGED_SHOWN] for code in first]
    out.attrs["merged_sizes"] = [int(counts[code]) for code in first]
    out.attrs["merged_count"] = int(len(shared))
    return out


def check_value_lengths(values: pd.Series, role: str, source: str, limit: int) -> None:
    """DataError when a text value of one role (task, worker, label, truth) is longer than ``limit`` characters.

    Works on the distinct values. Ids and classes are short: a longer value is free text read as ids or labels,
    and every table, chart and download that shows it would copy it."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        uniques = pd.Series(values.cat.categories)
    elif values.dtype.kind in "iufbmM":
        return
    else:
        uniques = pd.Series(pd.unique(values))
    if not len(uniques) or uniques.dtype.kind in "iufbmM":
        return
    text = uniques[[isinstance(v, str) for v in uniques]] if uniques.dtype == object else uniques
    if not len(text):
        return
    lengths = text.astype(str).str.len()
    longest = int(lengths.max())
    if longest <= limit:
        return
    raise value_too_long(source, role, longest, str(text.iloc[int(np.argmax(lengths.to_numpy()))])[:40], limit)


def value_too_long(source: str, role: str, longest: int, start: str, limit: int) -> DataError:
    """The error for a ``role`` value of ``longest`` characters beginning with ``start``, over ``limit``."""
    return DataError(f"{source}: a {role} value is {longest:,} characters long ({escape_controls(start[:40])!r}...); "
                     f"at most {limit:,} are read (DEEM_MAX_VALUE_CHARS): is the {role} column free text? Choose "
                     f"another column for the {role}s")
