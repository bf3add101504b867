"""Sparsemax along any dimension, fast when that dimension is not the last one.

DEEM applies sparsemax to every worker's K class scores. The training hot path keeps activations in
*feature-major* layout ``(R, d, K, B)`` (batch last, see ``model.py``) so that the reductions over the K
classes run over a strided axis with the long batch axis contiguous: 5-7x cheaper on the CPU than reducing
a last axis of length 10.

On the CPU the threshold ``tau`` of ``sparsemax(z) = max(z - tau, 0)`` is found by Michelot's projection
(Newton's method on ``f(tau) = sum_k max(z_k - tau, 0) - 1``, which is piecewise linear and convex): start
below the root at ``max(max_k z_k - 1, (sum_k z_k - 1) / K)``, then ``tau <- tau + f(tau) / |support|``.
Each step is exact once the support is right, the support only shrinks, so it ends in at most K steps (in
2-4 on DEEM's near one-hot inputs); no sort. On CUDA, where a sort is cheap and every host check costs a
synchronisation, the classic sort-based threshold is used. Both are checked against ``entmax.sparsemax`` in
the tests; ``entmax`` itself sorts along the last axis, which is what this module avoids on the CPU
(measured in benchmarks/results/speed.txt).
"""

from __future__ import annotations

import torch

__all__ = ["sparsemax", "sparsemax_threshold"]


def _threshold_newton(z: torch.Tensor, dim: int) -> torch.Tensor:
    """tau with ``sum max(z - tau, 0) = 1`` along ``dim`` (kept as size 1), by Michelot's iteration."""
    k = z.shape[dim]
    # (in-place steps on the fresh reductions: the same values with fewer temporaries)
    tau = torch.maximum(z.amax(dim, keepdim=True).sub_(1), z.sum(dim, keepdim=True).sub_(1).div_(k))
    previous_count = None
    for _ in range(k + 1):
        excess = (z - tau).clamp_min_(0)
        total = excess.sum(dim, keepdim=True)
        # sign() of the non-negative excess is the support as floats: 5x cheaper than a bool compare + sum
        # >= 1 (tau stays below the largest entry) unless the scores are so large that max - 1 rounds to max;
        # then the output is all zeros, finite, as with a sort-based threshold
        count = excess.sign_().sum(dim, keepdim=True).clamp_min_(1)
        tau = total.sub_(1).div_(count).add_(tau)  # tau + (total - 1) / count
        if previous_count is not None and torch.equal(count, previous_count):
            break  # same support twice: the last step was exact
        previous_count = count
    return tau


def _threshold_sort(z: torch.Tensor, dim: int) -> torch.Tensor:
    """tau by sorting (Martins & Astudillo, 2016): the support is the largest k with 1 + k z_(k) > sum_{j<=k} z_(j)."""
    k = z.shape[dim]
    z_sorted, _ = torch.sort(z, dim=dim, descending=True)
    cumulative = z_sorted.cumsum(dim) - 1
    shape = [1] * z.dim()
    shape[dim] = k
    ranks = torch.arange(1, k + 1, device=z.device, dtype=z.dtype).view(shape)
    support = (ranks * z_sorted > cumulative).sum(dim, keepdim=True)  # (..., 1, ...) >= 1
    return cumulative.gather(dim, support - 1) / support.to(z.dtype)


def sparsemax_threshold(z: torch.Tensor, dim: int) -> torch.Tensor:
    """The threshold tau of sparsemax along ``dim`` (that dimension kept with size 1)."""
    if z.is_cuda:
        return _threshold_sort(z, dim)
    return _threshold_newton(z, dim)


def _project(z: torch.Tensor, dim: int) -> torch.Tensor:
    return (z - sparsemax_threshold(z, dim)).clamp_min_(0)


class _Sparsemax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, dim):
        output = _project(z, dim)
        ctx.save_for_backward(output)
        ctx.dim = dim
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return sparsemax_backward(output, grad_output, ctx.dim), None


def sparsemax_backward(output: torch.Tensor, grad_output: torch.Tensor, dim: int) -> torch.Tensor:
    """Vector-Jacobian product of sparsemax: ``s * (g - sum(s g) / |s|)`` with ``s`` the support of ``output``."""
    support = torch.sign(output)  # output >= 0
    masked = grad_output * support
    mean = masked.sum(dim, keepdim=True).div_(support.sum(dim, keepdim=True).clamp_min_(1))
    return masked.sub_(support.mul_(mean))


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean projection of ``z`` onto the probability simplex along ``dim`` (differentiable)."""
    if torch.is_grad_enabled() and z.requires_grad:
        return _Sparsemax.apply(z, dim)
    return _project(z, dim)  # nothing to differentiate: without the autograd node's overhead
