"""Sparse matrices of the answers, and sums over the tasks two workers share.

Pairwise statistics (overlap, agreement, agreement expected under Dawid-Skene, contingency tables) all
have the form ``sum_t w_t f(t, i) g(t, j)`` over the tasks ``t`` that workers ``i`` and ``j`` both
answered. With ``A`` the (tasks x columns) sparse matrix of the answers (one column per worker, or one per
(worker, class)), that is ``A.T @ diag(w) @ B``: its cost is the number of answer pairs that share a task
(``sum_t a_t^2`` for tasks with ``a_t`` answers), never tasks x workers. On dense data (most workers
answer most tasks) the same product is faster with BLAS on dense chunks of tasks; :func:`pair_table`
picks the path from the counts (:data:`DENSE_PAIR_RATIO`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deem_core.data.annotations import AnnotationSet, DataError

__all__ = ["DENSE_PAIR_RATIO", "answer_matrix", "indicator_matrix", "pair_table", "table_values", "upper_pairs"]

#: the dense (BLAS) path is taken when the pairs of nonzeros sharing a row exceed this fraction of
#: rows x p x q. Measured (one thread, this machine): scipy's sparse product costs 1.3-2.5 ns per pair
#: (30 ns when the result is large and scattered), a dense chunked product 0.02-0.1 ns per multiply-add:
#: ratios 0.02-0.04
DENSE_PAIR_RATIO = 0.03
#: memory of one dense chunk of rows in the BLAS path
CHUNK_BYTES = 32 << 20
#: largest (p, q) result a pair table is computed into
MAX_TABLE_BYTES = 1 << 30


def indicator_matrix(data: AnnotationSet, weights: np.ndarray | None = None,
                     answers: np.ndarray | None = None) -> sp.csr_matrix:
    """(n_tasks, n_workers) CSR matrix with one entry per answer: 1, or ``weights`` (N,). ``answers``: an
    optional (N,) bool selection of the answers to keep (e.g. those of one class)."""
    values = np.ones(data.n_answers) if weights is None else np.asarray(weights, dtype=np.float64)
    if answers is None:
        return sp.csr_matrix((values, data.worker_codes, data.task_offsets), shape=(data.n_tasks, data.n_workers))
    answers = np.asarray(answers, dtype=bool)
    return sp.csr_matrix((values[answers], (data.task_codes[answers], data.worker_codes[answers])),
                         shape=(data.n_tasks, data.n_workers))


def answer_matrix(data: AnnotationSet, values: np.ndarray | None = None, n_values: int | None = None,
                  soft: bool = True) -> sp.csr_matrix:
    """(n_tasks, n_workers * V) CSR one-hot matrix of the answers: column ``worker * V + value``.

    values: (N,) codes in ``0..V-1`` (default the labels, V = K). With soft labels (``soft=True`` and
    ``values=None``) every answer holds its K probabilities instead of a single one: then
    ``answer_matrix(data) @ M.reshape(d * K, -1)`` is the dense ``votes.reshape(n, d * K) @ M`` of the
    (tasks x workers x classes) vote tensor, without building it.
    """
    d = data.n_workers
    if values is None and soft and data.soft_labels is not None:
        k = data.n_classes
        columns = (data.worker_codes[:, None] * k + np.arange(k)[None, :]).reshape(-1)
        return sp.csr_matrix((data.soft_labels.astype(np.float64).reshape(-1), columns, data.task_offsets * k),
                             shape=(data.n_tasks, d * k))
    v = data.n_classes if n_values is None else int(n_values)
    codes = data.label_codes if values is None else np.asarray(values, dtype=np.int64)
    return sp.csr_matrix((np.ones(data.n_answers), data.worker_codes * v + codes, data.task_offsets),
                         shape=(data.n_tasks, d * v))


def _use_dense(left: sp.csr_matrix, right: sp.csr_matrix) -> bool:
    n, p = left.shape
    q = right.shape[1]
    if n == 0:
        return False
    pairs = float(np.dot(np.diff(left.indptr).astype(np.float64), np.diff(right.indptr).astype(np.float64)))
    return pairs > DENSE_PAIR_RATIO * float(n) * p * q


def pair_table(left: sp.csr_matrix, right: sp.csr_matrix | None = None, row_weights: np.ndarray | None = None,
               dense: bool | None = None, to_dense: bool = True, max_bytes: int = MAX_TABLE_BYTES,
               chunk_rows: int | None = None) -> np.ndarray | sp.csr_matrix:
    """``left.T @ diag(row_weights) @ right`` (right defaults to left): a (p, q) table of sums over rows.

    dense: None picks the faster path from the number of nonzero pairs; True multiplies dense chunks of
    rows with BLAS, False uses scipy's sparse product. to_dense: return a float64 ndarray (refused with a
    DataError before allocating when larger than ``max_bytes``); False returns the sparse product as CSR
    (sorted indices) where the sparse path is taken, which holds only the pairs that occur. chunk_rows: rows
    per dense chunk (default: :data:`CHUNK_BYTES` of them).
    """
    right = left if right is None else right
    n, p = left.shape
    q = right.shape[1]
    dense = _use_dense(left, right) if dense is None else dense
    if (to_dense or dense) and p * q * 8 > max_bytes:
        raise DataError(f"a {p:,} x {q:,} table of pairs ({p * q * 8 / (1 << 30):.1f} GiB) is more than "
                        f"{max_bytes / (1 << 30):.1f} GiB; restrict it to fewer workers")
    weights = None if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    if not dense:
        scaled = left if weights is None else sp.diags(weights) @ left
        product = scaled.T.tocsr() @ right
        if to_dense:
            return np.asarray(product.toarray(), dtype=np.float64)
        product = sp.csr_matrix(product)
        product.sort_indices()
        return product
    out = np.zeros((p, q), dtype=np.float64)
    rows = max(1, CHUNK_BYTES // (8 * max(p + q, 1))) if chunk_rows is None else max(1, int(chunk_rows))
    for start in range(0, n, rows):
        block = slice(start, min(start + rows, n))
        a = left[block].toarray()
        b = a if right is left else right[block].toarray()
        if weights is not None:
            a = a * weights[block, None]
        out += a.T @ b
    return out


def table_values(table: np.ndarray | sp.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries ``table[rows[i], cols[i]]`` of a dense or sparse pair table as a float64 vector."""
    if sp.issparse(table):
        if len(rows) == 0:
            return np.zeros(0)
        return np.asarray(table[rows, cols], dtype=np.float64).reshape(-1)
    return np.asarray(table, dtype=np.float64)[rows, cols]


def upper_pairs(table: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j where a square pair table is nonzero (every pair that shares a task)."""
    if sp.issparse(table):
        coo = sp.triu(table, k=1).tocoo()
        keep = coo.data != 0
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
    i, j = np.nonzero(np.triu(np.asarray(table), 1))
    return i.astype(np.int64), j.astype(np.int64)
