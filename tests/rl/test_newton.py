"""The batched damped-Newton minimiser behind QLearning (neuroml/rl/_newton.py), on
problems whose minimisers are known."""

from __future__ import annotations

import pytest
import torch

from neuroml.rl._newton import LIMIT, minimize

F64 = torch.float64


def _quartic(centre):
    """f(x) = sum (x - c)^2 / 2 + (x - c)^4 / 4 per problem: one minimum, at c."""
    def fun(x, index):
        r = x - centre[index]
        f = (r * r / 2 + r ** 4 / 4).sum(-1)
        g = r + r ** 3
        H = torch.diag_embed(1 + 3 * r * r)
        return f, g, H

    def fun_fd(x, index):  # (J, m, P) points: values and gradients only
        r = x - centre[index]
        return (r * r / 2 + r ** 4 / 4).sum(-1), r + r ** 3

    return fun, fun_fd


@pytest.mark.parametrize("search", [0, 1000])
@pytest.mark.parametrize("exact", [True, False])
def test_minimize_finds_known_minimisers(search, exact):
    gen = torch.Generator().manual_seed(0)
    centre = 6 * torch.rand(40, 3, generator=gen, dtype=F64) - 3
    x0 = 6 * torch.rand(40, 3, generator=gen, dtype=F64) - 3
    fun, fun_fd = _quartic(centre)
    free = torch.ones(40, 3, dtype=torch.bool)
    x, f, n_iter, conv = minimize(fun if exact else fun_fd, x0, free, 100, 1e-9,
                                  hessian=exact, search=search)
    assert bool(conv.all())
    assert torch.allclose(x, centre, atol=1e-6)
    assert float(f.max()) < 1e-12
    assert int(n_iter.max()) < 30


def test_minimize_keeps_fixed_coordinates():
    centre = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=F64)
    fun, _ = _quartic(centre)
    x0 = torch.tensor([[0.0, 7.0], [0.0, -3.0]], dtype=F64)
    free = torch.tensor([[True, False], [True, False]])
    x, f, _, conv = minimize(fun, x0, free, 100, 1e-9, hessian=True)
    assert torch.equal(x[:, 1], x0[:, 1])
    assert torch.allclose(x[:, 0], centre[:, 0], atol=1e-6)
    assert bool(conv.all())


def _tail(x, index):
    """softplus(-x): decreasing towards +inf, as a likelihood whose optimum is at a
    parameter's bound is in the sigmoid-transformed coordinate."""
    f = torch.nn.functional.softplus(-x).sum(-1)
    s = torch.sigmoid(x)
    return f, -(1 - s), torch.diag_embed(s * (1 - s))


def test_step_lengths_cross_a_sigmoid_tail_in_fewer_rounds():
    x0 = torch.zeros(5, 1, dtype=F64)
    free = torch.ones(5, 1, dtype=torch.bool)
    plain = minimize(_tail, x0, free, 200, 1e-9, hessian=True, search=0)
    lengths = minimize(_tail, x0, free, 200, 1e-9, hessian=True, search=100)
    for x, f, _, conv in (plain, lengths):
        assert bool(conv.all())
        assert float(f.max()) < 1e-8  # at most 1e-8 above the infimum 0
        assert 15 < float(x.min()) <= LIMIT  # deep in the tail, inside the clamp
    # a Newton step moves about one unit in the tail (21 rounds here); six lengths up to
    # 8x move further (3 rounds)
    assert int(lengths[2].max()) < int(plain[2].max()) / 2


def test_restarts_of_one_subject_merge_and_the_best_is_kept():
    # two subjects x 4 restarts each, every restart of a subject heading to one minimum
    centre = torch.tensor([[0.5, -1.0]] * 4 + [[2.0, 1.0]] * 4, dtype=F64)
    fun, _ = _quartic(centre)
    gen = torch.Generator().manual_seed(1)
    x0 = centre + 0.5 * torch.randn(8, 2, generator=gen, dtype=F64)
    free = torch.ones(8, 2, dtype=torch.bool)
    x, f, n_iter, conv = minimize(fun, x0, free, 100, 1e-9, group=4, hessian=True)
    best = f.reshape(2, 4).argmin(1) + torch.tensor([0, 4])
    assert torch.allclose(x[best], centre[best], atol=1e-6)
    assert bool(conv[best].all())
    # merged restarts stop early, unconverged: fewer rounds than the subject's best
    assert int(n_iter.sum()) < 8 * int(n_iter.max())
