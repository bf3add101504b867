"""Our sparsemax (Michelot's threshold on the CPU, sort on CUDA) against entmax's reference implementation."""

from __future__ import annotations

import pytest
import torch
from entmax import sparsemax as entmax_sparsemax

from deem_core.model.sparsemax import _threshold_newton, _threshold_sort, sparsemax


def _scores(shape, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(*shape, generator=gen)
    z[..., :2, :] = z[..., :1, :]  # exact ties between the first two classes
    return z


@pytest.mark.parametrize("k", [2, 3, 10, 40])
@pytest.mark.parametrize("scale", [0.01, 0.5, 3.0, 50.0])
def test_forward_matches_entmax_along_a_middle_axis(k, scale):
    z = _scores((2, 5, k, 64), scale, seed=k)
    expected = entmax_sparsemax(z.transpose(2, 3), dim=-1).transpose(2, 3)
    out = sparsemax(z, dim=2)
    atol = 2e-6 * max(1.0, scale)  # float32 rounding of scores of size `scale`
    torch.testing.assert_close(out, expected, atol=atol, rtol=0)
    torch.testing.assert_close(out.sum(2), torch.ones(2, 5, 64), atol=atol, rtol=0)
    assert bool((out >= 0).all())
    for threshold in (_threshold_newton, _threshold_sort):
        torch.testing.assert_close((z - threshold(z, 2)).clamp_min(0), expected, atol=atol, rtol=0)


def test_last_axis_and_near_one_hot_scores_like_deem_layers():
    one_hot = torch.nn.functional.one_hot(torch.randint(0, 10, (300, 15), generator=torch.Generator().manual_seed(0)), 10)
    z = one_hot.float() + 0.005 * torch.randn(300, 15, 10, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sparsemax(z, dim=-1), entmax_sparsemax(z, dim=-1), atol=1e-6, rtol=0)


def test_backward_matches_entmax():
    z = _scores((3, 4, 6, 32), 1.0, seed=3)
    upstream = torch.randn(3, 4, 6, 32, generator=torch.Generator().manual_seed(4))
    ours = z.clone().requires_grad_(True)
    (sparsemax(ours, dim=2) * upstream).sum().backward()
    ref = z.clone().requires_grad_(True)
    (entmax_sparsemax(ref.transpose(2, 3), dim=-1).transpose(2, 3) * upstream).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, atol=1e-5, rtol=0)


def test_huge_scores_give_a_finite_output():
    """When max - 1 rounds to max the support is empty in float32: zeros, never NaN (a diverging run is then
    caught by its energy, not by NaNs from here)."""
    z = torch.tensor([[1e37, 3e36, -2e37]]).T.unsqueeze(0)  # (1, 3, 1): K along dim 1
    out = sparsemax(z, dim=1)
    assert bool(torch.isfinite(out).all())
