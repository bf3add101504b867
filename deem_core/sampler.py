"""Vectorised DMALA: discrete Langevin proposal with a Metropolis-Hastings correction.

Zhang, Liu & Liu (ICML 2022), as used by DEEM (App. G.3). The state is a class index per learner,
``state`` (R, B, d) int64, with an observed mask (R, B, d): missing learners have nothing to sample and
never change. With ``U(x) = -E(x)`` and ``g = dU/dx`` taken by autograd on the one-hot input, every
observed learner proposes independently and in parallel

    q_i(x_i' = k | x) ∝ exp(0.5 * (g_ik - g_i,cur) - [k != cur] / alpha),

and the whole proposal of a chain is accepted with probability
``min(1, exp(U(x') - U(x) + log q(x | x') - log q(x' | x)))``, the reverse proposal using the gradient
at ``x'``. One energy/gradient evaluation per step: the gradient of the accepted state is kept for the
next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["DMALASampler", "SamplerStats", "one_hot_state"]

EnergyFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def one_hot_state(state: torch.Tensor, mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(…, d) class indices + (…, d) mask -> (…, d, K) float one-hot, zero rows where missing."""
    onehot = torch.zeros(*state.shape, n_classes, dtype=mask.dtype, device=state.device)
    return onehot.scatter_(-1, state.clamp_min(0).unsqueeze(-1), mask.unsqueeze(-1))


def _exponential_like(template: torch.Tensor, generator) -> torch.Tensor:
    """Exp(1) noise shaped like ``template`` (R, ...). With one generator per run, run ``r``'s slice comes
    from generator ``r`` only, so a run's chain does not depend on the other runs in the batch."""
    out = torch.empty_like(template)
    if isinstance(generator, (list, tuple)):
        for run, gen in enumerate(generator):
            out[run].exponential_(generator=gen)
        return out
    return out.exponential_(generator=generator)


def _uniform_like(template: torch.Tensor, generator) -> torch.Tensor:
    """U(0, 1) noise shaped like ``template`` (R, ...), per run as in :func:`_exponential_like`."""
    if isinstance(generator, (list, tuple)):
        return torch.stack([torch.rand(template.shape[1:], generator=gen, device=template.device)
                            for gen in generator])
    return torch.rand(template.shape, generator=generator, device=template.device)


@dataclass
class SamplerStats:
    """Per-run statistics of one call: acceptance rate and fraction of observed learners changed."""

    acceptance_rate: torch.Tensor  # (R,)
    changed_fraction: torch.Tensor  # (R,) accepted changes / observed learners, averaged over steps


class DMALASampler:
    """Discrete Metropolis-adjusted Langevin sampler over one-hot learner states.

    Parameters
    ----------
    step_size:
        ``alpha`` of the proposal; each change of a learner's class costs ``1/alpha`` nats in the
        proposal. May be a float or an (R,) tensor (one per run).
    n_steps:
        MH steps per call.
    """

    def __init__(self, step_size: float | torch.Tensor = 1.0, n_steps: int = 5):
        self.step_size = step_size
        self.n_steps = n_steps

    @staticmethod
    def _energy_and_grad(energy_fn: EnergyFn, state, mask, n_classes):
        """U = -E, dU/dx at the one-hot ``x`` of ``state``: (R, B), (R, B, d, K), and ``x`` itself."""
        with torch.enable_grad():
            x = one_hot_state(state, mask, n_classes).requires_grad_(True)
            log_density = -energy_fn(x, mask)
            (grad,) = torch.autograd.grad(log_density.sum(), x)
        return log_density.detach(), grad, x.detach()

    @staticmethod
    def _proposal_log_probs(grad, x, inv_alpha):
        """log q_i(. | x) for every learner: (R, B, d, K).

        ``0.5 * (g_ik - g_i,cur) - [k != cur] / alpha`` differs from ``0.5 * g_ik + [k == cur] / alpha`` by a
        constant per learner, which the softmax removes; ``x`` (the one-hot state) is ``[k == cur]``.
        """
        return torch.log_softmax(torch.add(0.5 * grad, x * inv_alpha), dim=-1)

    @torch.no_grad()
    def sample(self, energy_fn: EnergyFn, state: torch.Tensor, mask: torch.Tensor, n_classes: int,
               generator: torch.Generator | Sequence[torch.Generator] | None = None,
               ) -> tuple[torch.Tensor, SamplerStats]:
        """Run ``n_steps`` DMALA steps from ``state`` (R, B, d) under ``energy_fn(x, mask) -> (R, B)``.

        ``generator``: one ``torch.Generator`` for all runs, or a sequence of R (one per run, so that each
        run's chains are reproducible whatever runs share the batch).

        Returns the new state (R, B, d) and per-run statistics.
        """
        r = state.shape[0]
        alpha = torch.as_tensor(self.step_size, dtype=mask.dtype, device=state.device)
        inv_alpha = 1.0 / (alpha.reshape(-1, 1, 1, 1) if alpha.dim() else alpha)
        observed = mask > 0
        n_observed = observed.sum(dim=(1, 2)).clamp_min(1)
        accepted_total = torch.zeros(r, device=state.device)
        changed_total = torch.zeros(r, device=state.device)
        log_density, grad, x = self._energy_and_grad(energy_fn, state, mask, n_classes)
        for _ in range(self.n_steps):
            forward_logq = self._proposal_log_probs(grad, x, inv_alpha)
            # Gumbel-max with exponential noise: argmax(log q - log E), E ~ Exp(1)
            noise = _exponential_like(forward_logq, generator).log_()
            proposal = torch.where(observed, (forward_logq - noise).argmax(-1), state)
            prop_log_density, prop_grad, prop_x = self._energy_and_grad(energy_fn, proposal, mask, n_classes)
            log_q_forward = (forward_logq * prop_x).sum(dim=(-1, -2))  # missing rows of prop_x are zero
            reverse_logq = self._proposal_log_probs(prop_grad, prop_x, inv_alpha)
            log_q_reverse = (reverse_logq * x).sum(dim=(-1, -2))
            log_accept = prop_log_density - log_density + log_q_reverse - log_q_forward
            uniform = _uniform_like(log_accept, generator)
            accept = torch.log(uniform.clamp_min(1e-30)) < log_accept  # (R, B); NaN -> reject
            changed = ((proposal != state) & observed).sum(-1)  # (R, B)
            accepted_total += accept.float().mean(-1)
            changed_total += (changed * accept).sum(-1) / n_observed
            keep = accept.view(*accept.shape, 1, 1)
            state = torch.where(accept.unsqueeze(-1), proposal, state)
            log_density = torch.where(accept, prop_log_density, log_density)
            grad = torch.where(keep, prop_grad, grad)
            x = torch.where(keep, prop_x, x)
        steps = max(self.n_steps, 1)
        return state, SamplerStats(accepted_total / steps, changed_total / steps)
