"""The DEEM network: multinomial layers feeding an identifiable RBM (iRBM) with one hidden unit.

Every parameter carries a leading *run* dimension ``R`` so that ``R`` independent models (different
learning rates and/or seeds) train as one batched model: each layer's ``(K, K, d, d)`` weight tensor
is stored as one ``(d*K, d*K)`` matrix per run and applied with a single batched matrix product.

Flattened unit/class layout: index ``i * K + l`` is worker ``i``, class ``l``.

Missing annotations
-------------------
An input cell that is not observed is a zero vector (never a class). Multinomial layers ignore it
(it contributes nothing to the products) and their output for that worker is zeroed again, so a
worker that is missing at the input stays missing up to the iRBM. The iRBM then *sums the missing
visible units out* of the joint distribution: for a missing worker ``i`` the hidden logit of class
``m`` gains ``log sum_l exp(a_i^l + w_i^{lm})``. This is exact marginalisation, so with no layers the
posterior equals the Dawid-Skene posterior over the observed labels only (Lemma 1 holds on sparse
data). Leaving the unit out instead (as RBMs for collaborative filtering do) would bias the posterior
by the hidden-class-dependent partition of every missing unit.
"""

from __future__ import annotations

import torch
from torch import nn

from deem_core.model.sparsemax import sparsemax, sparsemax_backward

__all__ = ["DEEMNetwork", "irbm_constant_masks"]


def irbm_constant_masks(n_workers: int, n_classes: int, device=None) -> dict[str, torch.Tensor]:
    """Masks of Definition 1 (identifiable RBM).

    Returns ``weight_free`` (d, K, K) and ``weight_fixed`` (d, K, K) so that the effective weight is
    ``w * weight_free + weight_fixed``: ``w^{lm} = 0`` when exactly one of ``l, m`` is the first class
    and ``w^{11} = 1``; plus ``visible_free`` (d, K) with ``a^1 = 0`` and ``hidden_free`` (K,) with
    ``b^1 = 0``.
    """
    d, k = n_workers, n_classes
    first_l = torch.zeros(k, k, dtype=torch.bool, device=device)
    first_l[0, :] = True
    first_m = torch.zeros(k, k, dtype=torch.bool, device=device)
    first_m[:, 0] = True
    free = ~(first_l | first_m)  # (K, K): neither index is the first class
    fixed = torch.zeros(k, k, device=device)
    fixed[0, 0] = 1.0
    visible_free = torch.ones(d, k, device=device)
    visible_free[:, 0] = 0.0
    hidden_free = torch.ones(k, device=device)
    hidden_free[0] = 0.0
    return {
        "weight_free": free.float().expand(d, k, k).clone(),
        "weight_fixed": fixed.expand(d, k, k).clone(),
        "visible_free": visible_free,
        "hidden_free": hidden_free,
    }


class DEEMNetwork(nn.Module):
    """``R`` independent DEEM models evaluated together.

    Parameters
    ----------
    n_runs, n_workers, n_classes, n_layers:
        ``R``, ``d``, ``K`` and the number of multinomial layers (0 = plain iRBM).

    Attributes
    ----------
    layer_weights: ParameterList of (R, d*K, d*K) — ``[r, i*K+l, j*K+m] = w_ij^{lm}``.
    layer_biases: ParameterList of (R, d*K).
    irbm_weight: (R, d, K, K) free iRBM weights ``[r, i, l, m] = w_i^{lm}`` (constants masked in).
    visible_bias: (R, d, K) free ``a_i^l``.  hidden_bias: (R, K) free ``b^m``.
    """

    def __init__(self, n_runs: int, n_workers: int, n_classes: int, n_layers: int = 1):
        super().__init__()
        r, d, k = n_runs, n_workers, n_classes
        self.n_runs, self.n_workers, self.n_classes, self.n_layers = r, d, k, n_layers
        self.layer_weights = nn.ParameterList(
            [nn.Parameter(torch.zeros(r, d * k, d * k)) for _ in range(n_layers)]
        )
        self.layer_biases = nn.ParameterList([nn.Parameter(torch.zeros(r, d * k)) for _ in range(n_layers)])
        self.irbm_weight = nn.Parameter(torch.zeros(r, d, k, k))
        self.visible_bias = nn.Parameter(torch.zeros(r, d, k))
        self.hidden_bias = nn.Parameter(torch.zeros(r, k))
        for name, value in irbm_constant_masks(d, k).items():
            self.register_buffer(name, value)

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def initialise(self, generator: torch.Generator | None = None, layer_noise: float = 0.005,
                   irbm_noise: float = 0.01) -> None:
        """App. G.1: identity layers + N(0, layer_noise^2); iRBM = majority vote + N(0, irbm_noise^2)."""
        r, d, k = self.n_runs, self.n_workers, self.n_classes
        dev = self.irbm_weight.device

        def noise(*shape):
            return torch.randn(*shape, generator=generator, device=dev)

        eye = torch.eye(d * k, device=dev)
        for weight, bias in zip(self.layer_weights, self.layer_biases):
            weight.copy_(eye + layer_noise * noise(r, d * k, d * k))
            bias.copy_(layer_noise * noise(r, d * k))
        diag = torch.eye(k, device=dev).expand(r, d, k, k)
        self.irbm_weight.copy_(diag + irbm_noise * noise(r, d, k, k) * (1 - diag))
        self.visible_bias.copy_(irbm_noise * noise(r, d, k))
        self.hidden_bias.copy_(irbm_noise * noise(r, k))

    # ------------------------------------------------------------------ effective iRBM parameters
    def effective_irbm(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """iRBM parameters with Definition 1's constants applied.

        Returns ``w`` (R, d, K, K) [i, l, m], ``a`` (R, d, K), ``b`` (R, K). Gradients never reach the
        constant entries because they are multiplied by zero.
        """
        w = self.irbm_weight * self.weight_free + self.weight_fixed
        a = self.visible_bias * self.visible_free
        b = self.hidden_bias * self.hidden_free
        return w, a, b

    # ------------------------------------------------------------------ forward pieces
    # The computations run in *feature-major* layout: inputs (R, d, K, B) and masks (R, d, B), batch last,
    # so that layer products are (d*K, d*K) x (d*K, B) matrix products and the sparsemax over the K classes
    # reduces a strided axis with the batch contiguous (see sparsemax.py). The methods without ``_fm`` take
    # and return the natural (R, B, d, K) layout and convert.

    def propagate_fm(self, x: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        """Run ``x`` (R, d, K, B) through the multinomial layers; mask (R, d, B) float, or None when every
        worker is observed.

        Returns every layer's output, input first: ``n_layers + 1`` tensors (R, d, K, B), missing workers
        zeroed; the last is the iRBM's visible input.
        """
        r, d, k, bsz = x.shape
        outputs = [x]
        current = x
        for weight, bias in zip(self.layer_weights, self.layer_biases):
            logits = torch.baddbmm(bias.unsqueeze(-1), weight.transpose(1, 2), current.reshape(r, d * k, bsz))
            current = sparsemax(logits.view(r, d, k, bsz), dim=2)
            if mask is not None:
                current = current * mask.unsqueeze(2)
            outputs.append(current)
        return outputs

    def _irbm_terms(self) -> dict[str, torch.Tensor]:
        """The iRBM's effective parameters shaped for feature-major products (computed once per use).

        ``w`` (R, d*K, K) [i*K+l, m], ``a`` (R, d*K, 1), ``b`` (R, K, 1), ``missing`` (R, K, d) [m, i].
        """
        w, a, b = self.effective_irbm()
        r, d, k = a.shape
        missing = torch.logsumexp(a.unsqueeze(-1) + w, dim=2)  # (R, d, K)
        return {"w": w.reshape(r, d * k, k), "a": a.reshape(r, d * k, 1), "b": b.unsqueeze(-1),
                "missing": missing.transpose(1, 2)}

    @staticmethod
    def _hidden_logits(terms: dict[str, torch.Tensor], v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``b^m + sum_{i obs, l} w_i^{lm} v_i^l + sum_{i missing} log sum_l exp(a_i^l + w_i^{lm})``: (R, K, B)."""
        r, d, k, bsz = v.shape
        logits = torch.baddbmm(terms["b"], terms["w"].transpose(1, 2), v.reshape(r, d * k, bsz))
        if mask is None:
            return logits
        return logits.baddbmm_(terms["missing"], 1.0 - mask)

    @staticmethod
    def _visible_term(terms: dict[str, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        """``sum_{i, l} a_i^l v_i^l``: (R, B) (missing workers are zero in ``v``)."""
        r, d, k, bsz = v.shape
        return torch.bmm(terms["a"].transpose(1, 2), v.reshape(r, d * k, bsz)).squeeze(1)

    def free_energy_and_logits_fm(self, x: torch.Tensor, mask: torch.Tensor | None,
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free energy (R, B) and hidden logits (R, K, B) of x (R, d, K, B), mask (R, d, B) or None (dense).

        ``F = - sum_{i obs, l} a_i^l v_i^l - log sum_m exp(hidden_logits_m)``.
        """
        v = self.propagate_fm(x, mask)[-1]
        terms = self._irbm_terms()
        logits = self._hidden_logits(terms, v, mask)
        return -self._visible_term(terms, v) - torch.logsumexp(logits, dim=1), logits

    @torch.no_grad()
    def sampler_energy(self, dense: bool = False):
        """``U(x) = -F(x)`` and ``dU/dx`` for DMALA with the current parameters, by a hand-written backward pass.

        Returns ``fn(x (R, d, K, B), mask (R, d, B)) -> (U (R, B), dU/dx (R, d, K, B))``; the iRBM's effective
        parameters are read once here, so build it anew after every update. ``dense=True`` promises that every worker is
        observed in the batches it will see (the missing-unit terms are skipped).
        With ``p = softmax(logits)`` (R, K, B): ``dU/dv = a + W_irbm p``; through each layer
        ``g_z = s (g - mean_s g)`` (sparsemax's Jacobian, ``s`` its support, empty for a masked output) and
        ``g_x = W g_z``.
        """
        terms = self._irbm_terms()  # the iRBM's effective parameters, once per sampler call

        @torch.no_grad()
        def log_density_and_grad(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            r, d, k, bsz = x.shape
            outputs = self.propagate_fm(x, None if dense else mask)
            v = outputs[-1]
            logits = self._hidden_logits(terms, v, None if dense else mask)  # (R, K, B)
            log_partition = torch.logsumexp(logits, dim=1)  # (R, B)
            posterior = logits.sub_(log_partition.unsqueeze(1)).exp_()  # (R, K, B)
            grad = torch.baddbmm(terms["a"], terms["w"], posterior)  # dU/dv: (R, d*K, B)
            for layer in range(self.n_layers - 1, -1, -1):
                # a masked (all-zero) output has an empty support, so its worker gets no gradient here
                grad_logits = sparsemax_backward(outputs[layer + 1], grad.view(r, d, k, bsz), dim=2)
                grad = torch.bmm(self.layer_weights[layer], grad_logits.view(r, d * k, bsz))
            return self._visible_term(terms, v) + log_partition, grad.view(r, d, k, bsz)

        return log_density_and_grad

    @staticmethod
    def to_feature_major(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, B, d, K), (R, B, d) -> (R, d, K, B), (R, d, B) (contiguous copies)."""
        return x.permute(0, 2, 3, 1).contiguous(), mask.transpose(1, 2).contiguous()

    def propagate(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`propagate_fm` in the natural layout: x (R, B, d, K), mask (R, B, d) -> list of (R, B, d, K)."""
        return [out.permute(0, 3, 1, 2) for out in self.propagate_fm(*self.to_feature_major(x, mask))]

    def hidden_logits(self, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden-unit logits with missing visible units summed out: v (R, B, d, K), mask (R, B, d) -> (R, B, K)."""
        return self._hidden_logits(self._irbm_terms(), *self.to_feature_major(v, mask)).transpose(1, 2)

    def free_energy_and_logits(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Free energy (R, B) and hidden logits (R, B, K) of x (R, B, d, K), mask (R, B, d)."""
        energy, logits = self.free_energy_and_logits_fm(*self.to_feature_major(x, mask))
        return energy, logits.transpose(1, 2)

    def free_energy(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Free energy F(x) with the hidden unit and missing visible units summed out: (R, B)."""
        return self.free_energy_and_logits(x, mask)[0]

    def posterior(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p(h = m | x) per run: (R, B, K) (hidden-unit order, before the class map)."""
        return torch.softmax(self.free_energy_and_logits(x, mask)[1], dim=-1)

    # ------------------------------------------------------------------ Lemma 1
    @torch.no_grad()
    def confusion_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the iRBM as a Dawid-Skene model (Lemma 1).

        Returns ``psi`` (R, d, K, K) with ``psi[r, i, l, m] = P(X_i = l | Y = m) = softmax_l(a_i^l +
        w_i^{lm})`` and ``prior`` (R, K) with ``pi_m`` proportional to ``exp(b^m) prod_i sum_l
        exp(a_i^l + w_i^{lm})`` (hidden-unit order; valid as a DS reading of the iRBM's own input).
        """
        w, a, b = self.effective_irbm()
        z = a.unsqueeze(-1) + w  # (R, d, K, K)
        psi = torch.softmax(z, dim=2)
        log_prior = b + torch.logsumexp(z, dim=2).sum(dim=1)
        return psi, torch.softmax(log_prior, dim=-1)

    @torch.no_grad()
    def set_from_dawid_skene(self, psi: torch.Tensor, prior: torch.Tensor) -> None:
        """Inverse of Lemma 1: set the iRBM so that it *is* the DS model (psi (d, K, K) [i, l, m], prior (K,)).

        ``a_i^l = log psi_il1 - log psi_i11`` (so that ``w^{l1} = 0``), ``w_i^{lm} = log psi_ilm -
        log psi_i1m - a_i^l`` shifted so ``w^{1m} = 0`` except ``w^{11} = 1``; ``b^m`` reproduces the
        prior. Applied to every run.
        """
        log_psi = torch.log(psi.clamp_min(1e-12)).to(self.irbm_weight)
        log_prior = torch.log(prior.clamp_min(1e-12)).to(self.irbm_weight)
        # z_ilm = a_i^l + w_i^{lm} must equal log psi_ilm + c_im (any per-(i, m) constant).
        # Choose c_im so that z_i1m = w_i^{1m} = [m == 1]; then a_i^l = z_il1 - w_i^{l1} = z_il1 - [l==1].
        c = (torch.tensor([1.0] + [0.0] * (psi.shape[-1] - 1), device=log_psi.device) - log_psi[:, 0, :])
        z = log_psi + c.unsqueeze(1)  # (d, K, K)
        a = z[:, :, 0] - torch.eye(psi.shape[-1], device=z.device)[:, 0]  # (d, K); a^1 = 1 - 1 = 0
        w = z - a.unsqueeze(-1)
        # prior: pi_m ∝ exp(b^m) prod_i sum_l exp(z_ilm) = exp(b^m) prod_i exp(c_im)
        b = log_prior - c.sum(dim=0)
        b = b - b[0]
        self.irbm_weight.copy_(w.expand_as(self.irbm_weight))
        self.visible_bias.copy_(a.expand_as(self.visible_bias))
        self.hidden_bias.copy_(b.expand_as(self.hidden_bias))

    def extra_repr(self) -> str:
        return (f"runs={self.n_runs}, workers={self.n_workers}, classes={self.n_classes}, "
                f"layers={self.n_layers}, params/run={sum(p[0].numel() for p in self.parameters())}")

