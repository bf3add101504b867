"""A diagnostics result (:class:`deem_core.analysis.diagnostics.Diagnostics`) saved with its run and read
back after a server restart, so the Diagnostics page shows it again without computing it again.

Layout under ``<run>/diagnostics_state/``: ``meta.json`` (every plain field: numbers, texts, lists),
``arrays.npz`` (every numpy array; loaded with ``allow_pickle=False``) and one table per DataFrame field
(``deem_studio.runs``' table format). Nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deem_studio.runs import _read_table, _side_json, _write_table, open_plain

__all__ = ["load_diagnostics", "save_diagnostics"]

_PARTS = ("mutual_information", "importance", "quality")
_VERSION = 1


#: characters of a list of names past which it is saved as a table, not in meta.json
NAMES_IN_META_CHARS = 1_000_000


def _long_names(value: Any) -> bool:
    """Whether ``value`` is a list of texts longer than :data:`NAMES_IN_META_CHARS` in all."""
    return (isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) for v in value)
            and sum(len(v) for v in value) > NAMES_IN_META_CHARS)


def _plain(value: Any) -> Any:
    """JSON-safe copy of a plain field (numpy scalars as Python numbers, tuples as lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else str(value)
    return value


def save_diagnostics(directory: str | Path, result: Any) -> Path:
    """Write ``result`` under ``directory`` (created); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"version": _VERSION, "seconds": _plain(result.seconds), "notes": _plain(result.notes)}
    arrays: dict[str, np.ndarray] = {}
    for part in _PARTS:
        obj = getattr(result, part)
        fields: dict[str, Any] = {}
        kinds: dict[str, str] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise TypeError(f"{part}.{f.name}: object arrays are not saved")
                arrays[f"{part}.{f.name}"] = value
                kinds[f.name] = "array"
            elif isinstance(value, pd.DataFrame):
                _write_table(directory / f"{part}.{f.name}", value.reset_index(drop=True))
                kinds[f.name] = "table"
            elif value is None:
                kinds[f.name] = "none"
            elif _long_names(value):  # (in a table of its own: in meta.json, 8,000 workers named with 10,000
                # characters made it 94 MB, past what the page reads back: "saved in an older format"; attack round 58)
                _write_table(directory / f"{part}.{f.name}", pd.DataFrame({"value": list(value)}))
                kinds[f.name] = "names"
            else:
                fields[f.name] = _plain(value)
                kinds[f.name] = "plain"
        meta[part] = {"fields": fields, "kinds": kinds}
    np.savez_compressed(directory / "arrays.npz", **arrays)
    (directory / "meta.json").write_text(json.dumps(meta, allow_nan=False), encoding="utf-8")
    return directory


def load_diagnostics(directory: str | Path) -> Any | None:
    """The result saved by :func:`save_diagnostics`, or None when there is none (or it cannot be read)."""
    from deem_core.analysis.diagnostics import Diagnostics  # noqa: PLC0415
    from deem_core.analysis.diagnostics.importance import ImportanceResult  # noqa: PLC0415
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.analysis.diagnostics.quality import QualityResult  # noqa: PLC0415

    directory = Path(directory)
    try:
        # each file through the one it opened, never a link (read by name: a planted link or FIFO; attack round 45)
        meta = _side_json(directory / "meta.json")
        if meta.get("version") != _VERSION:
            return None
        with open_plain(directory / "arrays.npz") as handle, np.load(handle, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        parts = {}
        for part, cls in zip(_PARTS, (MutualInformationResult, ImportanceResult, QualityResult)):
            info = meta[part]
            values = dict(info["fields"])
            for name, kind in info["kinds"].items():
                if kind == "array":
                    values[name] = arrays[f"{part}.{name}"]
                elif kind == "table":
                    values[name] = _read_table(directory / f"{part}.{name}")
                elif kind == "none":
                    values[name] = None
                elif kind == "names":
                    values[name] = _read_table(directory / f"{part}.{name}")["value"].tolist()
            parts[part] = cls(**values)
        return Diagnostics(**parts, seconds=meta.get("seconds") or {}, notes=list(meta.get("notes") or []))
    except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None
