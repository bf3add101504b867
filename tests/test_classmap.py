"""Remark 3's class map: Hungarian matching of hidden units to classes."""

from __future__ import annotations

import numpy as np

from deem_core.model.classmap import agreement_matrix, hungarian_class_map


def test_recovers_a_permutation():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 4, 500)
    perm = np.array([2, 0, 3, 1])  # hidden h = perm[class]
    hidden = perm[reference]
    noisy = hidden.copy()
    flip = rng.random(500) < 0.2
    noisy[flip] = rng.integers(0, 4, flip.sum())
    mapping = hungarian_class_map(noisy, reference, 4)
    np.testing.assert_array_equal(mapping[perm], np.arange(4))


def test_ties_keep_the_identity_and_missing_reference_is_ignored():
    hidden = np.array([0, 1, 0, 1])
    reference = np.array([-1, -1, -1, -1])
    np.testing.assert_array_equal(hungarian_class_map(hidden, reference, 2), [0, 1])
    counts = agreement_matrix(np.array([0, 1, 1]), np.array([1, -1, 1]), 2)
    np.testing.assert_array_equal(counts, [[0, 1], [0, 1]])
