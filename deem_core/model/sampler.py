"""Vectorised DMALA: discrete Langevin proposal with a Metropolis-Hastings correction.

Zhang, Liu & Liu (ICML 2022), as used by DEEM (App. G.3). The state is a class index per worker,
``state`` (R, B, d) int64, with an observed mask (R, B, d): missing workers have nothing to sample and
never change. With ``U(x) = -E(x)`` and ``g = dU/dx`` at the one-hot input, every observed worker
proposes independently and in parallel

    q_i(x_i' = k | x) ∝ exp(0.5 * (g_ik - g_i,cur) - [k != cur] / alpha),

and the whole proposal of a chain is accepted with probability
``min(1, exp(U(x') - U(x) + log q(x | x') - log q(x' | x)))``, the reverse proposal using the gradient
at ``x'``. One energy/gradient evaluation per step: the proposal weights of the accepted state (made from
its gradient) are kept for the next step, with its one-hot input; the gradient itself is not needed again.

The energy comes as ``log_density_and_grad(x, mask) -> (U (R, B), dU/dx (R, d, K, B))`` in the
feature-major layout of ``model.py`` (``DEEMNetwork.sampler_energy()``, a hand-written backward pass).
Proposals are drawn by inverting each worker's cumulative proposal distribution with one uniform number
(K times fewer random numbers than Gumbel-max, whose exponential noise was 15% of a CPU epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = ["DMALASampler", "SamplerStats", "one_hot_state"]

LogDensityGradFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def one_hot_state(state: torch.Tensor, mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(…, d) class indices + (…, d) mask -> (…, d, K) float one-hot, zero rows where missing."""
    onehot = torch.zeros(*state.shape, n_classes, dtype=mask.dtype, device=state.device)
    return onehot.scatter_(-1, state.clamp_min(0).unsqueeze(-1), mask.unsqueeze(-1))


def one_hot_fm(state: torch.Tensor, mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Feature-major one-hot: (R, d, B) class indices + (R, d, B) mask -> (R, d, K, B), zero where missing."""
    r, d, bsz = state.shape
    onehot = torch.zeros(r, d, n_classes, bsz, dtype=mask.dtype, device=state.device)
    return onehot.scatter_(2, state.clamp_min(0).unsqueeze(2), mask.unsqueeze(2))


def _uniform_like(template: torch.Tensor, generator, widths: Sequence[int] | None = None) -> torch.Tensor:
    """U(0, 1) noise shaped like ``template`` (R, ...). With one generator per run, run ``r``'s slice comes
    from generator ``r`` only, so a run's chain does not depend on the other runs in the batch.

    ``widths`` (one per run): only the first ``widths[r]`` entries of axis 1 are drawn for run ``r`` (the
    rest are 0), so that a run's draws do not depend on how far its batch-mates pad that axis either.
    """
    if isinstance(generator, (list, tuple)):
        if widths is None or all(int(width) == template.shape[1] for width in widths):  # nothing padded
            if len(generator) == 1:
                return torch.rand(template.shape[1:], generator=generator[0], device=template.device).unsqueeze(0)
            return torch.stack([torch.rand(template.shape[1:], generator=gen, device=template.device)
                                for gen in generator])
        out = torch.zeros(template.shape, device=template.device)
        for run, (gen, width) in enumerate(zip(generator, widths)):
            out[run, :width] = torch.rand((int(width),) + tuple(template.shape[2:]), generator=gen,
                                          device=template.device)
        return out
    return torch.rand(template.shape, generator=generator, device=template.device)


@dataclass
class SamplerStats:
    """Per-run statistics of one call: acceptance rate and fraction of observed workers changed."""

    acceptance_rate: torch.Tensor  # (R,)
    changed_fraction: torch.Tensor  # (R,) accepted changes / observed workers, averaged over steps


class DMALASampler:
    """Discrete Metropolis-adjusted Langevin sampler over one-hot worker states.

    Parameters
    ----------
    step_size:
        ``alpha`` of the proposal; each change of a worker's class costs ``1/alpha`` nats in the
        proposal. May be a float or an (R,) tensor (one per run).
    n_steps:
        MH steps per call.
    """

    def __init__(self, step_size: float | torch.Tensor = 1.0, n_steps: int = 5):
        self.step_size = step_size
        self.n_steps = n_steps

    @staticmethod
    def _proposal(grad, x, inv_alpha):
        """Unnormalised proposal of every worker at one state: ``weights`` (R, d, K, B) and their sum ``norm`` (R, d, B).

        ``q_i(k | x) = weights_ik / sum_k weights_ik`` with ``log weights = 0.5 * g_ik + [k == cur] / alpha - max``:
        ``0.5 * (g_ik - g_i,cur) - [k != cur] / alpha`` differs from it by a constant per worker, which the
        normalisation removes; ``x`` (the one-hot state) is ``[k == cur]``.
        """
        logits = torch.add(0.5 * grad, x * inv_alpha)
        peak = logits.amax(dim=2, keepdim=True)
        weights = logits.sub_(peak).exp_()  # (R, d, K, B), largest entry 1 per worker
        return weights, weights.sum(dim=2)

    @staticmethod
    def _log_q(weights, norm, one_hot, unobserved):
        """``sum_i log q_i(x_i)`` over the observed workers: (R, B), for the state ``one_hot`` (R, d, K, B);
        ``unobserved`` (R, d, B) is ``1 - mask``, or None when every worker is observed.

        (A product with the one-hot state is 8x cheaper than a gather along the class axis on the CPU.)
        """
        picked = (weights * one_hot).sum(dim=2).div_(norm)  # (R, d, B); 0 for a missing worker
        if unobserved is not None:
            picked = picked.add_(unobserved)  # missing: log 1 = 0
        return torch.log(picked).sum(dim=1)

    @torch.no_grad()
    def sample(self, log_density_and_grad: LogDensityGradFn, state: torch.Tensor, mask: torch.Tensor,
               n_classes: int, generator: torch.Generator | Sequence[torch.Generator] | None = None,
               widths: Sequence[int] | None = None) -> tuple[torch.Tensor, SamplerStats]:
        """Run ``n_steps`` DMALA steps from ``state`` (R, B, d) with observed ``mask`` (R, B, d).

        ``log_density_and_grad(x (R, d, K, B), mask (R, d, B)) -> (U (R, B), dU/dx (R, d, K, B))``.
        ``generator``: one ``torch.Generator`` for all runs, or a sequence of R (one per run, so that each
        run's chains are reproducible whatever runs share the batch). ``widths``: with per-run generators,
        run ``r`` only uses the first ``widths[r]`` columns of the worker axis (answer slots padded to the
        batch's largest task: the proposals are drawn for those columns only, see :func:`_uniform_like`).

        Returns the new state (R, B, d) and per-run statistics.
        """
        r = state.shape[0]
        state = state.transpose(1, 2).contiguous()  # (R, d, B)
        mask = mask.transpose(1, 2).contiguous()  # (R, d, B)
        alpha = torch.as_tensor(self.step_size, dtype=mask.dtype, device=state.device)
        inv_alpha = 1.0 / (alpha.reshape(-1, 1, 1, 1) if alpha.dim() else alpha)
        observed = mask > 0
        # with every worker observed (no padded slot, no missing worker) the masking steps below are identities
        all_observed = bool(observed.all())
        unobserved = None if all_observed else 1.0 - mask
        n_observed = observed.sum(dim=(1, 2)).clamp_min(1)
        accepted_total = torch.zeros(r, device=state.device)
        changed_total = torch.zeros(r, device=state.device)
        # cumulative sums over the K classes as one small matrix product (cumsum along a middle axis is 4x slower)
        lower = torch.ones(n_classes, n_classes, dtype=mask.dtype, device=state.device).tril_()
        x = one_hot_fm(state, mask, n_classes)
        log_density, grad = log_density_and_grad(x, mask)
        weights, norm = self._proposal(grad, x, inv_alpha)
        last_class = n_classes - 1
        for _ in range(self.n_steps):
            # inverse-CDF draw: the number of classes whose cumulative weight is below u * total
            cumulative = torch.matmul(lower, weights)  # (R, d, K, B)
            # scaled by the product's own total so that the last class is always reached
            threshold = _uniform_like(mask, generator, widths).unsqueeze(2).mul_(cumulative[:, :, -1:])  # (R, d, 1, B)
            drawn = torch.lt(cumulative, threshold).sum(dim=2).clamp_max_(last_class)  # (R, d, B)
            proposal = drawn if all_observed else torch.where(observed, drawn, state)
            prop_x = one_hot_fm(proposal, mask, n_classes)
            prop_log_density, prop_grad = log_density_and_grad(prop_x, mask)
            prop_weights, prop_norm = self._proposal(prop_grad, prop_x, inv_alpha)
            log_q_forward = self._log_q(weights, norm, prop_x, unobserved)
            log_q_reverse = self._log_q(prop_weights, prop_norm, x, unobserved)
            log_accept = prop_log_density - log_density + log_q_reverse - log_q_forward
            uniform = _uniform_like(log_accept, generator)
            accept = torch.log(uniform.clamp_min(1e-30)) < log_accept  # (R, B); NaN -> reject
            changed = (proposal != state) if all_observed else ((proposal != state) & observed)
            changed = changed.sum(1)  # (R, B)
            accepted_total += accept.float().mean(-1)
            changed_total += (changed * accept).sum(-1) / n_observed
            # keep the accepted chains' state (lerp with 0/1 weights is exact and 4x cheaper than where)
            taken = accept.to(mask.dtype).unsqueeze(1)  # (R, 1, B)
            state = torch.where(accept.unsqueeze(1), proposal, state)
            log_density = torch.where(accept, prop_log_density, log_density)
            x = x.lerp_(prop_x, taken.unsqueeze(2))
            weights = weights.lerp_(prop_weights, taken.unsqueeze(2))
            norm = norm.lerp_(prop_norm, taken)
        steps = max(self.n_steps, 1)
        return state.transpose(1, 2), SamplerStats(accepted_total / steps, changed_total / steps)
