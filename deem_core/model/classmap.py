"""Class map of Remark 3: match the model's hidden units to classes with the Hungarian algorithm."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["hungarian_class_map", "agreement_matrix"]


def agreement_matrix(hidden: np.ndarray, reference: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts ``[h, c]`` of tasks whose hidden argmax is ``h`` and reference label is ``c``.

    Tasks whose reference is -1 (no label) are ignored.
    """
    hidden = np.asarray(hidden, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    keep = reference >= 0
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (hidden[keep], reference[keep]), 1)
    return counts


def hungarian_class_map(hidden: np.ndarray, reference: np.ndarray, n_classes: int) -> np.ndarray:
    """Permutation ``phi`` (K,) with ``phi[h]`` = class of hidden unit ``h``, maximising agreement.

    hidden: (n,) hidden-unit argmax; reference: (n,) reference classes (majority vote or gold), -1 ignored.
    Ties are resolved towards the identity (the map the majority-vote initialisation starts from).
    """
    counts = agreement_matrix(hidden, reference, n_classes).astype(float)
    # a tiny bonus on the diagonal keeps the identity when assignments tie
    score = counts + 1e-6 * np.eye(n_classes)
    rows, cols = linear_sum_assignment(score, maximize=True)
    mapping = np.empty(n_classes, dtype=np.int64)
    mapping[rows] = cols
    return mapping
