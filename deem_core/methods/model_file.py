"""Checks of a DEEM model file read from disk, before anything is built from it (used by ``DEEM.load``).

A model file may come from anyone (a colleague, a download). ``torch.load(weights_only=True)`` already refuses
code; these checks make the rest of a hostile or damaged file a :class:`DataError` naming the file, never a
crash later on (found attacking main: a file whose worker list was cut, whose class maps were out of range or
whose tensor shapes did not match ended in "unexpected RuntimeError ... (this is a bug)"), and never an
allocation out of proportion to the file: a 112 KB file whose tensors were broadcast views (stride 0) of one
number declared 200,000 workers and made the loader ask for 1.44 TB; and a 1.9 MB file whose one tensor was a
deflated member of 2 GB of zeros made ``torch.load`` inflate it (attack round, ninth session): the archive is
checked first (:func:`check_archive`).
"""

from __future__ import annotations

import inspect
import struct
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from deem_core.data.annotations import DataError
from deem_core.model.training import MAX_LAYERS

__all__ = ["check_archive", "check_network_state", "check_params", "check_loaded"]


def _bad(name: str, what: str) -> DataError:
    return DataError(f"{name}: not a valid DEEM model file ({what})")


def check_archive(path: Path) -> None:
    """Before ``torch.load``: the file is a zip archive (what ``torch.save`` writes) whose members are stored, not
    compressed, so nothing read from it can be larger than the file itself. (``torch.load`` inflates a compressed
    member whole and allocates every storage the pickle declares; a storage longer than its stored member is
    refused by torch.)"""
    name = path.name
    try:
        regular = path.is_file()
    except OSError:
        regular = False
    if not regular:  # a device reads without end: zipfile read /dev/zero to 23.6 GB (attack round 21)
        try:
            exists = path.exists()
        except OSError:
            exists = True
        if not exists:  # (a missing file read "a device, a pipe or a folder"; walkthrough 45)
            raise DataError(f"{name}: no such file")
        raise DataError(f"{name}: not a DEEM model file (not a regular file: a device, a pipe or a folder)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{name}: not a DEEM model file (not the zip archive torch.save writes: "
                        f"{type(exc).__name__})") from None
    size = path.stat().st_size
    if not _directory_where_stated(path, size):
        raise _bad(name, "its zip directory is not where its end record says (an archive read two ways)")
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED or member.file_size > size:
            raise _bad(name, f"its member {member.filename[:40]!r} is compressed or larger than the file "
                             f"({member.file_size:,} bytes declared); torch.save stores members as they are")


def _directory_where_stated(path: Path, size: int) -> bool:
    """Whether the archive's central directory ends where its end record begins and starts where that record
    says. ``zipfile`` reads the directory found just before the end record (allowing for data prepended to an
    archive), ``torch.load`` the one at the stated offset: a file holding a second, harmless-looking directory
    passed :func:`check_archive` and then had 600 MB inflated by torch (attack round, ninth session)."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 22))
        tail = handle.read(22)
        if len(tail) < 22 or tail[:4] != b"PK\x05\x06" or tail[20:22] != b"\x00\x00":  # (torch writes no comment)
            return False
        cd_size, cd_offset = struct.unpack("<LL", tail[12:20])
        end = size - 22
        handle.seek(max(0, size - 42))
        locator = handle.read(20)
        if len(locator) == 20 and locator[:4] == b"PK\x06\x07":  # zip64 (torch writes it for every file): the
            end = struct.unpack("<Q", locator[8:16])[0]  # locator points to the zip64 end record, which holds the
            handle.seek(end)  # directory's size and offset
            record = handle.read(56)
            if len(record) < 56 or record[:4] != b"PK\x06\x06":
                return False
            cd_size, cd_offset = struct.unpack("<QQ", record[40:56])
        elif 0xFFFFFFFF in (cd_size, cd_offset):
            return False
        return cd_offset + cd_size == end


def check_params(params: Any, estimator: type, name: str) -> dict[str, Any]:
    """The estimator's saved hyperparameters: a dict of names its ``__init__`` takes."""
    if not isinstance(params, Mapping):
        raise _bad(name, "its 'params' is not a mapping")
    known = set(inspect.signature(estimator.__init__).parameters) - {"self"}
    unknown = sorted(str(k) for k in params if k not in known)
    if unknown:
        raise _bad(name, f"unknown {'parameter' if len(unknown) == 1 else 'parameters'} {', '.join(repr(u[:40]) for u in unknown[:5])}")
    return dict(params)


def check_network_state(state: Any, name: str, n_workers: int, n_classes: int) -> None:
    """The network's tensors hold their own data (no broadcast views: what is built from them costs what the
    file holds) and have exactly the shapes a network of the file's workers and classes has."""
    from deem_core.model.network import DEEMNetwork  # noqa: PLC0415

    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _bad(name, "its network is not a set of tensors")
    for key, tensor in state.items():
        if tensor.numel() and tensor.untyped_storage().nbytes() < tensor.numel() * tensor.element_size():
            raise _bad(name, f"tensor {str(key)[:40]!r} of shape {tuple(tensor.shape)} holds only "
                             f"{tensor.untyped_storage().nbytes():,} bytes")
    weight = state.get("irbm_weight")
    if weight is None or weight.dim() != 4 or weight.shape[2] != weight.shape[3]:
        raise _bad(name, "no iRBM weight of shape (runs, workers, classes, classes)")
    runs, workers, classes, _ = (int(v) for v in weight.shape)
    if (workers, classes) != (n_workers, n_classes):
        raise _bad(name, f"its network has {workers:,} workers and {classes:,} classes, its lists "
                         f"{n_workers:,} and {n_classes:,}")
    layers = sum(1 for key in state if str(key).startswith("layer_weights."))
    if layers > MAX_LAYERS:  # (600 layers sharing one stored tensor: a 4 MB file took 2.7 GB to load, and past ~25
        # the diagnostics' charts failed; attack round 28)
        raise _bad(name, f"its network has {layers:,} layers; DEEM trains at most {MAX_LAYERS}")
    blocks = bool(layers) and state.get("layer_weights.0") is not None and state["layer_weights.0"].dim() == 4
    pair_keys = state.get("pair_keys")  # blocks of chosen worker pairs (None: all pairs)
    if pair_keys is not None and (pair_keys.dtype.is_floating_point or pair_keys.dim() != 1):
        raise _bad(name, "its pair keys are not a list of whole numbers")
    if pair_keys is not None and len(pair_keys) and (
            int(pair_keys.min()) < 0 or int(pair_keys.max()) >= workers * workers
            or (len(pair_keys) > 1 and not bool((pair_keys[1:] > pair_keys[:-1]).all()))):
        # (keys past the pairs ended the diagnostics in "unexpected IndexError", repeated ones gave wrong mutual
        # information without a word; attack round 28)
        raise _bad(name, f"its pair keys are not increasing pair numbers below {workers * workers:,} (worker i, "
                         f"worker j as i x workers + j)")
    try:
        with torch.device("meta"):  # the shapes of such a network, with no memory allocated
            expected = DEEMNetwork(runs, workers, classes, layers, "blocks" if blocks else "matrix", pair_keys)
        shapes = {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    except Exception as exc:  # noqa: BLE001 - whatever the file's values make the constructor say
        raise _bad(name, f"{type(exc).__name__}: {str(exc)[:120]}") from None
    shapes.setdefault("prior_bias", ())  # files from before the bias's meaning was stored lack it
    given = {str(k): tuple(v.shape) for k, v in state.items()}
    if set(given) - set(shapes) or set(shapes) - set(given) - {"prior_bias"}:
        raise _bad(name, "its network's tensors are not those of a DEEM network")
    wrong = [k for k in given if given[k] != shapes[k]]
    if wrong:
        raise _bad(name, f"tensor {wrong[0][:40]!r} has shape {given[wrong[0]]}, expected {shapes[wrong[0]]}")


#: fitted values that are text, numbers, or lists of text (None allowed): a file giving another type (a list for
#: ``fallback``) loaded, then crashed the methods that read it ("unexpected AttributeError"; attack round 20)
TEXT_VALUES = ("class_map_source_", "init_", "fallback_", "data_fingerprint_")
NUMBER_VALUES = ("lr_", "n_epochs_", "epochs_", "dependence_", "n_layers_", "gold_accuracy_", "dead_units_",
                 "fit_seconds_", "batch_size_")
TEXT_LISTS = ("run_status_", "run_messages_", "warnings_")


def check_loaded(model: Any, name: str) -> None:
    """The decoded attributes agree with each other (sizes, class maps, codes) and have their types."""
    for attribute in ("tasks_", "workers_", "classes_"):  # (one name twice broke reading a worker's row)
        index = getattr(model, attribute, None)
        if index is not None and not index.is_unique:
            raise _bad(name, f"its {attribute.rstrip('_')} are not unique")
    for attribute in TEXT_VALUES + NUMBER_VALUES + TEXT_LISTS:
        value = getattr(model, attribute, None)
        if value is None:
            continue
        if attribute in TEXT_VALUES:
            fits = isinstance(value, str)
        elif attribute in NUMBER_VALUES:
            fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            fits = isinstance(value, list) and all(isinstance(item, str) for item in value)
        if not fits:
            raise _bad(name, f"its {attribute.rstrip('_')} is not a list of text" if attribute in TEXT_LISTS else
                       f"its {attribute.rstrip('_')} is a {type(value).__name__}")
    n_tasks, k, runs = len(model.tasks_), len(model.classes_), model.network_.n_runs
    for attribute, shape in (("posterior_", (n_tasks, k)), ("class_maps_", (runs, k)), ("run_labels_", (runs, n_tasks)),
                             ("seed_agreement_", (n_tasks,)), ("free_energy_", (n_tasks,))):
        value = getattr(model, attribute, None)
        if value is not None and tuple(np.shape(value)) != shape:
            raise _bad(name, f"{attribute.rstrip('_')} has shape {tuple(np.shape(value))}, expected {shape}")
    log_z = getattr(model, "fallback_log_z_", None)  # (a file's: read back into every task's posterior)
    if log_z is not None and (tuple(np.shape(log_z)) != (len(model.workers_), k)
                              or not np.isfinite(np.asarray(log_z, dtype=np.float64)).all()):
        raise _bad(name, f"fallback_log_z has shape {tuple(np.shape(log_z))} or values that are not finite, expected "
                         f"{(len(model.workers_), k)}")
    posterior = getattr(model, "posterior_", None)
    if posterior is not None and np.size(posterior):
        # (a NaN or made-up posterior was shown as the model's: every worker "worse than chance" beside its
        # accuracy of 0.878 read from the network; attack round 28)
        values = np.asarray(posterior, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or np.abs(values.sum(axis=1) - 1).max() > 1e-3:
            raise _bad(name, "its posterior is not one probability per class for each task")
    maps = np.asarray(model.class_maps_)
    if not np.issubdtype(maps.dtype, np.integer) or any(sorted(row) != list(range(k)) for row in maps.tolist()):
        raise _bad(name, "its class maps are not permutations of the classes")
    labels = np.asarray(model.run_labels_)
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k):
        raise _bad(name, "its run labels are not class codes")
