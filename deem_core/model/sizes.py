"""Size checks made before a model is allocated: refuse what would not fit, with a clear message."""

from __future__ import annotations

import os

from deem_core.data.annotations import DataError

__all__ = ["MAX_CLASSES", "check_problem_size"]

#: more classes than this is almost certainly a free-text or id column read as labels
MAX_CLASSES = 1000

def _memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_problem_size(n_workers: int, n_classes: int, n_layers: int = 1, n_runs: int = 1,
                       memory_bytes: int | None = None, max_classes: int = MAX_CLASSES,
                       source: str = "annotations") -> int:
    """Refuse (DataError) a model that would not fit: returns the estimated bytes otherwise.

    Each multinomial layer holds (d*K)^2 weights per run, the iRBM d*K*K; training keeps about four
    copies (weights, gradients, optimiser state, temporaries) in float32. ``memory_bytes``: the budget
    (default: half the machine's physical memory; pass the GPU's memory when training there).
    """
    d, k, layers, runs = int(n_workers), int(n_classes), int(n_layers), int(n_runs)
    if k > max_classes:
        raise DataError(f"{source}: {k:,} classes is more than DEEM handles (at most {max_classes:,}); check that "
                        f"the label column holds class labels, not free text, scores or ids")
    units = d * k
    floats = runs * (layers * (units * units + units) + d * k * k + d * k + k)
    estimate = 4 * 4 * floats
    budget = int(memory_bytes) if memory_bytes is not None else _memory_bytes() // 2
    if estimate > budget:
        raise DataError(
            f"{source}: the model would need about {_gib(estimate)} ({layers} layer(s) of {units:,} x {units:,} "
            f"weights for {d:,} workers x {k:,} classes, {runs} run(s)) but {_gib(budget)} is available; use "
            f"fewer layers (--layers 0), fewer seeds, or fewer workers/classes")
    return estimate
