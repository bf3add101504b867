"""Dawid-Skene by expectation-maximisation on the dense code matrix, vectorised (numpy).

Used to start DEEM from a Dawid-Skene fit (Lemma 1 maps DS parameters one-to-one onto an iRBM) and as
a fast reference. crowd-kit's ``DawidSkene`` works on long DataFrames with pandas group-bys; this one
works on the (n_tasks, n_workers) code matrix that the engine already holds, which is both faster and
handles soft labels. Missing answers (code -1) are left out of the likelihood (the DS model's own
treatment: an absent answer carries no evidence).

Conventions: ``confusion`` (d, K, K) with ``confusion[i, l, m] = P(worker i says l | true class m)``
(rows = given label, columns = true class, as ``psi`` in Lemma 1), ``prior`` (K,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


__all__ = ["DawidSkeneFit", "excess_pairwise_agreement", "fit_dawid_skene", "dawid_skene_posterior", "one_hot_codes"]


@dataclass
class DawidSkeneFit:
    confusion: np.ndarray  # (d, K, K) [i, l, m] = P(X_i = l | Y = m)
    prior: np.ndarray  # (K,)
    posterior: np.ndarray  # (n, K)
    n_iter: int
    log_likelihood: float


def one_hot_codes(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, d) codes with -1 = missing -> (n, d, K) float64 one-hot, zero rows where missing."""
    onehot = np.zeros(labels.shape + (n_classes,), dtype=np.float64)
    rows, cols = np.nonzero(labels >= 0)
    onehot[rows, cols, labels[rows, cols]] = 1.0
    return onehot


def dawid_skene_posterior(votes: np.ndarray, confusion: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, float]:
    """E-step: p(y | x) (n, K) and the log-likelihood, for votes (n, d, K) (one-hot or soft)."""
    log_conf = np.log(np.clip(confusion, 1e-12, None))  # (d, K, K)
    # log p(x, y=m) = log pi_m + sum_{i,l} v_il log psi_ilm  -> one matrix product
    n, d, k = votes.shape
    joint = votes.reshape(n, d * k) @ log_conf.reshape(d * k, k) + np.log(np.clip(prior, 1e-12, None))
    norm = logsumexp(joint, axis=1, keepdims=True)
    return np.exp(joint - norm), float(norm.sum())


def fit_dawid_skene(labels: np.ndarray, n_classes: int, soft: np.ndarray | None = None, max_iter: int = 100,
                    tol: float = 1e-4, smoothing: float = 0.01) -> DawidSkeneFit:
    """Fit DS by EM from a (soft) majority-vote start.

    labels: (n, d) codes, -1 = missing; soft: optional (n, d, K) probabilities used instead of one-hot.
    smoothing: pseudo-count added to every confusion cell and prior class (keeps logs finite).
    Stops when the log-likelihood per annotation improves by less than ``tol`` nats in one iteration
    (crowd-kit stops on a similar per-annotation criterion, 1e-5 on its ELBO).
    """
    k = n_classes
    votes = soft.astype(np.float64) if soft is not None else one_hot_codes(labels, k)  # (n, d, K)
    n, d, _ = votes.shape
    n_answers = max(float(votes.sum()), 1.0)
    # start from majority-vote *shares* (as crowd-kit does): a hard argmax start breaks ties arbitrarily
    # and, on mixture-of-experts data, lands EM in a worse optimum (measured on ampdata: 0.865 vs 0.934)
    shares = votes.sum(axis=1)  # (n, K)
    totals = shares.sum(axis=1, keepdims=True)
    posterior = np.where(totals > 0, shares / np.where(totals > 0, totals, 1.0), 1.0 / k)
    previous = -np.inf
    log_lik = previous
    iteration = 0
    for iteration in range(1, max_iter + 1):
        # M-step: counts[i, l, m] = sum_t v_til p_tm
        counts = np.einsum("til,tm->ilm", votes, posterior) + smoothing
        confusion = counts / counts.sum(axis=1, keepdims=True)
        prior = posterior.sum(axis=0) + smoothing
        prior = prior / prior.sum()
        posterior, log_lik = dawid_skene_posterior(votes, confusion, prior)
        if abs(log_lik - previous) / n_answers < tol:
            break
        previous = log_lik
    return DawidSkeneFit(confusion=confusion, prior=prior, posterior=posterior, n_iter=iteration,
                         log_likelihood=log_lik)


def excess_pairwise_agreement(labels: np.ndarray, fit: DawidSkeneFit, min_common: int = 20) -> float:
    """How much more workers agree with each other than a fitted Dawid-Skene model predicts.

    For every pair of workers with at least ``min_common`` common tasks: (observed agreements - agreements
    expected under DS given each task's posterior) / common tasks; returns the mean over pairs (0.0 when no
    pair qualifies). DS assumes workers are independent given the true class, so a clearly positive value
    means dependent workers (copies of one classifier, shared mistakes), which DS cannot explain.
    Measured: duck 0.012, dog 0.014, condind -0.000, ampdata -0.001 (independent workers); tree3k 0.041,
    digits 0.042, digits_experts 0.051 (dependent ensembles).
    """
    k = fit.confusion.shape[-1]
    votes = one_hot_codes(labels, k)  # (n, d, K)
    observed = (labels >= 0).astype(np.float64)  # (n, d)
    common = observed.T @ observed  # (d, d)
    agree_observed = np.einsum("til,tjl->ij", votes, votes)
    agree_given_class = np.einsum("ilm,jlm->ijm", fit.confusion, fit.confusion)  # P(i, j agree | y = m)
    weighted = fit.posterior[:, None, :] * observed[:, :, None]  # (n, d, K)
    agree_expected = np.einsum("tim,tj,ijm->ij", weighted, observed, agree_given_class)
    upper = np.triu_indices(labels.shape[1], 1)
    keep = common[upper] >= min_common
    if not keep.any():
        return 0.0
    excess = (agree_observed[upper] - agree_expected[upper])[keep] / common[upper][keep]
    return float(excess.mean())
