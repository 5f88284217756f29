"""The sine preset's fit by variable projection (Golub & Pereyra 1973).

``amplitude * sin(frequency * x + phase) = A sin(frequency * x) + B cos(frequency * x)``
with ``A = amplitude cos(phase)``, ``B = amplitude sin(phase)``: for a fixed frequency
the model is linear, and its least-squares ``(A, B)`` solve 2 x 2 normal equations
``G v = d`` (``G`` the Gram matrix of the sine and cosine, ``d`` their products with the
data). What is left is one dimension per (neuron, restart) row: maximise the explained
sum of squares ``psi(f) = d^T G^{-1} d``, whose first and second derivatives in ``f``
are exact closed forms of weighted sums of ``x^q e^{i f x}`` (``q`` = 0, 1, 2; the
data's) and ``x^q e^{2 i f x}`` (the Gram matrix's). Each row takes safeguarded Newton
steps on ``psi``: a trust radius (one periodogram bin to start), a step is kept only
when ``psi`` does not fall, and the radius shrinks after a rejected one. A row stops on
MINPACK's tests, as the Levenberg-Marquardt solver does: the actual and predicted
relative decrease of its sum of squares below ``tol``, or the next step below ``tol``
relative to the frequency, or the next step predicted to gain less than ``tol`` of the
sum of squares. That last step is then taken on the local quadratic model where the
model is exact enough (the frequency moves by it, the coefficients along their
derivatives, by less than 1e-5 of themselves, the sum of squares by the decrease
predicted; against evaluating the step, the parameters agree to 1e-8 and the sum of
squares to 1e-12, measured on 3,000 noisy sines), and evaluated elsewhere. Its minimum
is the one ``curve_fit`` reaches on ``(amplitude, frequency, phase)`` from the same
frequency (the amplitude and phase at any frequency being their exact least-squares
values). The sums are Taylor-expanded in the frequency (:class:`_Expansion`): the
data's around each row's start, the Gram matrix's (the same for every row) around the
nearest point of a shared lattice of frequencies. That is one pass over the samples,
after which a Newton step costs a few operations on ``(rows, terms)`` arrays; from the
periodogram's guess two to four steps suffice, where Levenberg-Marquardt takes five to
ten full evaluations. Once three quarters of the rows have stopped, the others are
evaluated alone; the per-row arithmetic runs in NumPy on the CPU (:func:`_namespace`).

Evenly spaced ``x`` (after merging repeats, with or without gaps): the expansion's
``e^{i c x}`` at every sample is a product of two short tables, ``e^{i c (x_0 + j L dx)}``
and ``e^{i c l dx}`` (``l < L``, about ``sqrt(m)`` of each), by the angle-addition
formulas: ``2 sqrt(m)`` transcendental evaluations per row instead of ``m``, each
product within a few units in the last place of the direct ``sin``/``cos``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._levenberg_marquardt import History

__all__ = ["sine_variable_projection", "uniform_grid"]

_F64 = torch.float64
_TINY = float(torch.finfo(_F64).tiny)


def uniform_grid(x: torch.Tensor) -> tuple[float, float, torch.Tensor] | None:
    """``(x0, dx, n)`` with ``x == x0 + n * dx`` to a few units in the last place of
    ``max |x|`` (``n`` integers, ``x`` sorted and distinct), or None when ``x`` is not on
    such a grid or the grid would have more than twice as many points as ``x``."""
    m = x.shape[0]
    if m < 16:  # the tables would save little
        return None
    x0, gaps = float(x[0]), x[1:] - x[:-1]
    step = float(gaps.min())
    if not step > 0:
        return None
    n = torch.round((x - x0) / step)
    if float(n[-1]) > 2 * m:
        return None
    dx = float(x[-1] - x0) / float(n[-1])  # the spacing from the whole range
    scale = max(abs(x0), abs(float(x[-1])))
    if float((x0 + n * dx - x).abs().max()) > 8 * torch.finfo(_F64).eps * scale:
        return None
    return x0, dx, n.long()


class _Expansion:
    """Taylor expansions in the frequency of the sums that ``psi`` is made of.

    In the units ``u = (x - centre) / R`` in [-1, 1] and ``g = frequency * R`` (so that
    ``g u = frequency (x - centre)``), the data sums ``D_q(g) = sum w y u^q e^{i g u}``
    and the Gram sums ``S_q(g) = sum w u^q e^{2 i g u}`` (``q`` = 0, 1, 2) are, around a
    centre ``c``, ``D_q(c + t) = sum_n (i t)^n / n! M_{q+n}`` and ``S_q(c + t) =
    sum_n (2 i t)^n / n! N_{q+n}`` with the moments ``M_j = sum w y u^j e^{i c u}`` and
    ``N_j = sum w u^j e^{2 i c u}``. One pass over the samples gives a row's data moments
    at its own centre (one matrix product with the shared powers ``u^j``); the Gram sums
    are the same function of ``g`` for every row, so their moments are computed at the
    points of a lattice of spacing ``RADIUS / 3`` (only those that rows are near), and a
    row uses the nearest one. A Newton step then costs a few operations on
    ``(B, terms)`` arrays. With ``|t| <= RADIUS`` around a row's data centre and
    ``|t| <= RADIUS / 2`` around its lattice point, the series' remainders are below
    ``1e-16`` of the sums' scale (``|u| <= 1``: ``0.9^18 / 18! = 2e-17``); a row that
    steps farther is expanded again at its new frequency (from the periodogram's guess,
    rarely: a row keeps its lattice point for ``RADIUS / 3`` beyond the half spacing).
    """

    TERMS, RADIUS = 18, 0.9
    GRAM_STEP = RADIUS / 3

    def __init__(self, x: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None):
        lo, hi = float(x[0]), float(x[-1])
        self.centre, self.R = (lo + hi) / 2, max((hi - lo) / 2, 1e-300)
        dev = x.device
        self.u = u = (x - self.centre) / self.R
        wv = torch.ones_like(x) if w is None else w
        j = torch.arange(self.TERMS + 2, dtype=_F64, device=dev)
        powers = u ** j[:, None]
        self.PW = (powers * wv).contiguous()  # w u^j for the Gram moments
        self.W0 = wv.sum()
        # the data as (sample, row): the layout of the matrix product with the powers
        wy = Y.T if w is None else Y.T * w[:, None]
        self.wy2 = (wy * Y.T).sum(0)  # sum w y^2 of every row
        grid = uniform_grid(x)
        self.grid = grid is not None
        if self.grid:  # the data on the grid (zeros where x has no sample)
            x0, dx, n = grid
            size = int(n[-1]) + 1
            self.L = int(math.ceil(math.sqrt(size)))
            self.J = -(-size // self.L)
            du, u0 = dx / self.R, (x0 - self.centre) / self.R
            self.near = torch.arange(self.L, dtype=_F64, device=dev) * du
            self.far = u0 + torch.arange(self.J, dtype=_F64, device=dev) * (self.L * du)
            if size > x.shape[0]:  # gaps
                powers = powers.new_zeros((powers.shape[0], size)).index_copy_(1, n, powers)
                wy = wy.new_zeros((size, wy.shape[1])).index_copy_(0, n, wy)
        self.P = powers.contiguous()  # u^j for the data moments
        self.wy = wy
        self.inv_n = (1 / j[1:self.TERMS])[:, None]
        self.twice = torch.tensor([[1.0], [2.0]], dtype=_F64, device=dev)  # (2 i t)^n for S
        self.data_rows = _window_gather(self.TERMS, _DATA_ROWS, dev)
        self.gram_rows = _window_gather(self.TERMS, _GRAM_ROWS, dev)

    def moments(self, c: torch.Tensor, rows: torch.Tensor | None,
                out: torch.Tensor | None = None) -> torch.Tensor:
        """The data moments ``M_j`` at centres ``c`` of the rows ``rows`` (all when None),
        as :func:`_windows` (written into ``out`` when given)."""
        b = c.shape[0]
        wy = self.wy if rows is None else self.wy[:, rows]
        size = wy.shape[0]
        # (sample, cos | sin, row): rows innermost, so that every operation runs along
        # long contiguous runs
        if self.grid:  # e^{i c (far_j + near_l)} = e^{i c far_j} e^{i c near_l}
            zn, zf = self.near[:, None] * c, self.far[:, None] * c
            sn, cn = torch.sin(zn), torch.cos(zn)
            sf, cf = torch.sin(zf)[:, None], torch.cos(zf)[:, None]
            z = wy.new_empty((self.J, self.L, 2, b))
            torch.mul(cf, cn, out=z[:, :, 0]).addcmul_(sf, sn, value=-1)
            torch.mul(sf, cn, out=z[:, :, 1]).addcmul_(cf, sn)
            z = z.view(-1, 2, b)[:size]
        else:
            arg = self.u[:, None] * c
            z = torch.stack([torch.cos(arg), torch.sin(arg)], 1)
        z.mul_(wy[:, None])  # the data times the basis
        return _windows(self.P @ z.view(size, 2 * b), *self.data_rows, out)

    def gram(self, g: torch.Tensor, out: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gram moments ``N_j`` at the lattice point nearest to each ``g``, as
        :func:`_windows` (written into ``out`` when given), and those points."""
        ks, inverse = torch.unique(torch.round(g / self.GRAM_STEP), return_inverse=True)
        c = ks * self.GRAM_STEP
        arg = (2 * c)[:, None] * self.u
        basis = torch.cat([torch.cos(arg), torch.sin(arg)])
        windows = _windows(self.PW @ basis.T, *self.gram_rows)
        if out is None:
            return windows[..., inverse], c[inverse]
        return torch.index_select(windows, 2, inverse, out=out), c[inverse]

    def sums(self, windows: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """:func:`_explained`'s inputs ``(12, b)`` from ``windows`` ``(2, 6, TERMS, b)``
        (the data's of :meth:`moments`, then the Gram's) and the offsets ``t`` ``(2, b)``
        from the data centre and from the lattice point."""
        series = t.new_ones((2, self.TERMS, t.shape[1]))  # t^n / n! and (2 t)^n / n!
        torch.cumprod((t * self.twice)[:, None, :] * self.inv_n, 1, out=series[:, 1:])
        return (windows * series[:, None]).sum(2).view(12, -1)


# The windows: with X_q + i Y_q = sum_n t^n / n! i^(q+n) M_{q+n}, the series of
# D_q = i^-q (X_q + i Y_q) and of S_q (in 2 t) give _explained's inputs as
# (Im D_0, Re D_0, Re D_1, -Im D_1, -Im D_2, -Re D_2) = (Y_0, X_0, Y_1, X_1, Y_2, X_2) and
# (Re S_0, Im S_0, Im S_1, Re S_1, 2 Re S_2, -2 Im S_2) = (X_0, Y_0, -X_1, Y_1, -2 X_2, 2 Y_2):
# (part, q, factor) per row, part 0 for X and 1 for Y
_DATA_ROWS = ((1, 0, 1), (0, 0, 1), (1, 1, 1), (0, 1, 1), (1, 2, 1), (0, 2, 1))
_GRAM_ROWS = ((0, 0, 1), (1, 0, 1), (0, 1, -1), (1, 1, 1), (0, 2, -2), (1, 2, 2))


@functools.cache
def _window_gather(terms: int, rows: tuple, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each window entry comes from in the moments ``(j, re | im)`` flattened, and
    its sign and factor: ``i^j M_j`` is ``(re, im)``, ``(-im, re)``, ``(-re, -im)``,
    ``(im, -re)`` for ``j % 4`` = 0, 1, 2, 3. Made once per device."""
    index, factor = [], []
    for part, q, f in rows:
        for n in range(terms):
            j = q + n
            swap = j % 2 == 1  # odd powers of i swap the real and imaginary parts
            sign = ((1, -1, -1, 1) if part == 0 else (1, 1, -1, -1))[j % 4]
            index.append(2 * j + (part ^ swap))
            factor.append(sign * f)
    return (torch.tensor(index, device=device),
            torch.tensor(factor, dtype=_F64, device=device)[:, None])


def _windows(mom: torch.Tensor, index: torch.Tensor, factor: torch.Tensor,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """From moments ``(TERMS + 2, 2 b)`` (``M_j``'s real parts, then imaginary, for each
    row), the windows ``(6, TERMS, b)`` whose products with the real series ``t^n / n!``
    are :func:`_explained`'s inputs: ``sum_n (i t)^n / n! M_{q+n} = i^-q sum_n t^n / n!
    (i^(q+n) M_{q+n})``, so the powers of ``i`` are a choice of part and sign per entry
    (:func:`_window_gather`)."""
    b = mom.shape[1] // 2
    if out is None:
        return (mom.view(-1, b)[index] * factor).view(6, -1, b)
    torch.mul(mom.view(-1, b)[index], factor, out=out.view(-1, b))
    return out


def _explained(xp, g, sums, W0: float):
    """``psi``, its first two derivatives in ``g``, the linear coefficients ``(A, B)``
    and their derivatives in ``g`` at ``g`` from the sums ``(12, B)``
    (:meth:`_Expansion.sums`); stacked with ``g`` as ``(8, B)``. ``d`` is the data's
    products with ``(sin, cos)``, ``G`` their Gram matrix, primes derivatives in ``g``.
    ``xp`` is the arrays' module (:func:`_namespace`)."""
    d1, d2, e1, e2, h1, h2, c, s, p11, p12, q11, q12 = sums  # d, d', d''; S_0, G', G''
    # Gram matrix of (sin, cos); a ridge where both vanish on every sample (the Nyquist
    # frequency's sine, or f = 0) keeps the coefficients finite
    ridge = 1e-12 * W0 + _TINY
    g11, g12, g22 = (W0 - c) / 2 + ridge, s / 2, (W0 + c) / 2 + ridge
    det = g11 * g22 - g12 * g12

    def solve(r1, r2):
        return (g22 * r1 - g12 * r2) / det, (g11 * r2 - g12 * r1) / det

    v1, v2 = solve(d1, d2)
    psi = d1 * v1 + d2 * v2
    # G' = [[p11, p12], [p12, -p11]], G'' = [[q11, q12], [q12, -q11]]
    gv1, gv2 = p11 * v1 + p12 * v2, p12 * v1 - p11 * v2
    dpsi = 2 * (e1 * v1 + e2 * v2) - (v1 * gv1 + v2 * gv2)
    w1, w2 = solve(e1 - gv1, e2 - gv2)  # dv/dg
    d2psi = 2 * (h1 * v1 + h2 * v2 + e1 * w1 + e2 * w2 - w1 * gv1 - w2 * gv2) \
        - (q11 * (v1 * v1 - v2 * v2) + 2 * q12 * v1 * v2)
    return xp.stack([g, psi, dpsi, d2psi, v1, v2, w1, w2])


def _newton(xp, state):
    """The Newton step on ``psi`` from each column of ``state`` (:func:`_explained`'s
    rows) where ``psi`` is concave there, else 0; and where it is."""
    d2psi = state[3]
    concave = d2psi < 0
    return xp.where(concave, -state[2] / xp.where(concave, d2psi, -1.0), 0.0), concave


def _namespace(device: torch.device):
    """The module for the per-row arithmetic, and conversions to it from torch and back.

    On the CPU, NumPy: the loop is some hundred operations per step on arrays of one
    number per row, where NumPy's overhead per operation is a third of torch's (measured
    on 1,000 rows: 54 us against 129 us for :func:`_explained`); the arrays share their
    memory with the tensors. Elsewhere torch, on the device. Returns the module, the
    conversions from and to tensors, and a copy of an array."""
    if device.type == "cpu":
        return np, (lambda t: t.numpy()), torch.from_numpy, np.copy
    return torch, (lambda t: t), (lambda a: a), torch.clone


def sine_variable_projection(x: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None,
                             within: torch.Tensor, f0: torch.Tensor, max_iter: int,
                             tol: float, verbose) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor, History]:
    """Fit ``amplitude * sin(frequency * x + phase)`` to every row of ``Y`` ``(B, m)``
    from the frequencies ``f0`` ``(B,)``.

    ``x`` ``(m,)`` sorted distinct, ``w`` ``(m,)`` the weights of merged repeats or None,
    ``within`` ``(B,)`` the part of each row's sum of squares that merging removed.
    Returns ``theta`` ``(B, 3)`` (amplitude >= 0, frequency >= 0, phase), each row's
    weighted sum of squares on the distinct ``x``, whether it converged, and the
    :class:`History` (the Levenberg-Marquardt solver's). On a GPU, a few host
    synchronisations per step (the rows left and the mean loss; whether any row needs
    its sums expanded again).
    """
    B, dev = Y.shape[0], Y.device
    xp, array, tensor, copy = _namespace(dev)
    exp = _Expansion(x, Y, w)
    R, W0, valid = exp.R, float(exp.W0), exp.RADIUS
    total_w = float(x.shape[0]) if w is None else float(w.sum())
    wy2 = array(exp.wy2)
    fixed = wy2 + array(within)  # each row's sum of squares is fixed - psi
    g = xp.clip(array(f0), 0.0, None) * R
    centre = copy(g)  # each row's data centre
    windows = Y.new_empty((2, 6, exp.TERMS, B))  # the data's, then the Gram's
    exp.moments(tensor(centre), None, out=windows[0])
    lattice = array(exp.gram(tensor(g), out=windows[1])[1])  # each row's lattice point

    every = array(torch.arange(B, device=dev))

    def explained(g, rows=None):
        """_explained at g for the rows ``rows`` (all when None), expanding the sums
        again where the series would not hold."""
        ids, sel = (every, slice(None)) if rows is None else (rows, rows)
        far = abs(g - centre[sel]) > valid
        if far.any():
            centre[ids[far]] = g[far]
            windows[0][..., tensor(ids[far])] = exp.moments(tensor(g[far]), tensor(ids[far]))
        far = abs(g - lattice[sel]) > valid / 2
        if far.any():
            windows[1][..., tensor(ids[far])], lattice[ids[far]] = exp.gram(tensor(g[far]))
        t = tensor(xp.stack([g - centre[sel], g - lattice[sel]]))
        w = windows if rows is None else windows[..., tensor(rows)]
        return _explained(xp, g, array(exp.sums(w, t)), W0)

    # state rows: g, psi, dpsi, d2psi, A, B, dA/dg, dB/dg (_explained's); the trust
    # radius starts at a quarter period over the range (about one periodogram bin)
    state = explained(g)
    newton, concave = _newton(xp, state)
    radius = xp.full_like(g, math.pi / 2)
    done_all = xp.zeros_like(g, dtype=bool)
    history = History(verbose)
    # every row steps until all have stopped (a stopped row's step is zero); once most
    # have stopped, the rest are evaluated alone
    for it in range(1, max_iter + 1):
        g, psi, dpsi, d2psi = state[:4]
        limit = tol * (fixed - psi)
        step = xp.where(concave, newton, xp.sign(dpsi) * radius)
        step = xp.maximum(xp.minimum(step, radius), -xp.minimum(radius, g))  # f >= 0
        # a stationary point (no first-order gain within the radius) stays, whatever the
        # curvature, as for Gauss-Newton: the sine at the Nyquist frequency of integer x
        step = xp.where(done_all | (abs(dpsi) * radius <= limit), 0.0, step)
        active = every[~done_all]
        if len(active) <= B // 4:  # few rows left: those alone (the others stay)
            new = copy(state)
            new[:, active] = explained(g[active] + step[active], active)
        else:
            new = explained(g + step)
        gain = new[1] - psi  # the decrease of the sum of squares
        pred = step * (dpsi + 0.5 * step * d2psi)
        accept = gain >= 0
        state = xp.where(accept, new, state)
        # the next step from the kept point and its predicted decrease
        newton, concave = _newton(xp, state)
        next_step = xp.where(concave, abs(newton), math.inf)
        next_gain = 0.5 * next_step * abs(state[2])
        scale = tol * (state[0] + tol * R)
        done_all |= ((abs(gain) <= limit) & (abs(pred) <= limit)) | (next_step <= scale) | \
            (next_gain <= tol * (fixed - state[1])) | \
            (~accept & (abs(step) <= scale)) | (radius <= scale)
        at_edge = abs(step) >= 0.99 * radius
        radius = xp.where(accept, xp.where(at_edge, 2 * radius, radius), abs(step) / 4)
        # the rows left and the mean loss, in one synchronisation
        n_left, mean_cost = xp.stack([(~done_all).sum() * 1.0, (wy2 - state[1]).sum()]).tolist()
        history.record(it, mean_cost / (B * total_w), n_left)
        if not n_left:
            break
    # the last Newton step of every row (rows stop where it would gain less than tol of
    # the sum of squares; it completes them). On the local quadratic model where that is
    # exact enough: a gain below tol and coefficients that move by less than 1e-5 of
    # themselves (the model's error, of second order in the step, is then below 1e-8
    # of them even for a sine fitted near frequency 0 with an amplitude in the
    # hundreds; on 3,000 noisy sines the largest move was 7e-6); evaluated, and kept
    # where it does not raise the sum of squares, elsewhere (a flat psi near frequency
    # 0, rows stopped by max_iter)
    g, psi, dpsi, d2psi, v1, v2, dv1, dv2 = state
    step = xp.maximum(newton, -g)
    gain = step * (dpsi + 0.5 * step * d2psi)
    on_model = (gain <= tol * (fixed - psi)) & \
        (abs(step) * xp.hypot(dv1, dv2) <= 1e-5 * xp.hypot(v1, v2))
    out = copy(state)
    out[0], out[1] = g + xp.where(on_model, step, 0.0), psi + xp.where(on_model, gain, 0.0)
    out[4], out[5] = v1 + xp.where(on_model, step * dv1, 0.0), \
        v2 + xp.where(on_model, step * dv2, 0.0)
    rows = every[~on_model & (step != 0)]
    if len(rows):
        new = explained(g[rows] + step[rows], rows)
        out[:, rows] = xp.where(new[1] >= psi[rows], new, state[:, rows])
    g, psi, _, _, v1, v2, _, _ = out
    frequency = g / R
    # a sin(g u + p') = a sin(f x + p) with p = p' - f centre
    theta = xp.stack([xp.hypot(v1, v2), frequency,
                      xp.arctan2(v2, v1) - frequency * exp.centre], 1)
    cost = xp.clip(wy2 - psi, 0.0, None)
    return tensor(theta), tensor(cost), tensor(done_all), history
