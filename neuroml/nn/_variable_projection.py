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
sum of squares (that last step is then taken, and kept where it does not raise the sum of
squares). Its minimum is the one ``curve_fit`` reaches on ``(amplitude, frequency,
phase)`` from the same frequency (the amplitude and phase at any frequency being their
exact least-squares values). The sums are Taylor-expanded in the frequency around each
row's start (:class:`_Expansion`): one pass over the samples, after which a Newton step
costs a few operations on ``(rows, terms)`` arrays; from the periodogram's guess two to
four steps suffice, where Levenberg-Marquardt takes five to ten full evaluations.

Evenly spaced ``x`` (after merging repeats, with or without gaps): the expansion's
``e^{i c x}`` at every sample is a product of two short tables, ``e^{i c (x_0 + j L dx)}``
and ``e^{i c l dx}`` (``l < L``, about ``sqrt(m)`` of each), by the angle-addition
formulas: ``2 sqrt(m)`` transcendental evaluations per row instead of ``m``, each
product within a few units in the last place of the direct ``sin``/``cos``.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from ._levenberg_marquardt import History

__all__ = ["sine_variable_projection", "uniform_grid"]

_F64 = torch.float64


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
    ``N_j = sum w u^j e^{2 i c u}``: one pass over the samples gives every moment (two
    matrix products with the shared powers ``u^j``), after which each Newton step costs a
    few operations on ``(B, terms)`` arrays. With ``|t| <= RADIUS`` the series' remainder
    is below ``1e-16`` of the sums' scale (``|u| <= 1``): ``0.6^16 / 16!`` and
    ``1.2^20 / 20!``; a row that steps farther is expanded again at its new frequency.
    """

    TERMS, TERMS2, RADIUS = 16, 20, 0.6

    def __init__(self, x: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None):
        lo, hi = float(x[0]), float(x[-1])
        self.centre, self.R = (lo + hi) / 2, max((hi - lo) / 2, 1e-300)
        u = (x - self.centre) / self.R
        wv = torch.ones_like(x) if w is None else w
        grid = uniform_grid(x)
        self.grid = grid is not None
        if self.grid:  # on the padded grid (zeros where x has no sample)
            x0, dx, n = grid
            size = int(n[-1]) + 1
            self.L = int(math.ceil(math.sqrt(size)))
            self.J = -(-size // self.L)
            M = self.J * self.L
            du, u0 = dx / self.R, (x0 - self.centre) / self.R
            self.near = torch.arange(self.L, dtype=_F64, device=x.device) * du
            self.far = u0 + torch.arange(self.J, dtype=_F64, device=x.device) * (self.L * du)

            def place(v):  # (..., m) -> (..., M)
                if M == v.shape[-1] and bool((n == torch.arange(M, device=n.device)).all()):
                    return v
                out = v.new_zeros(v.shape[:-1] + (M,))
                out[..., n] = v
                return out
        else:
            M, place = x.shape[0], (lambda v: v)
        self.u = u
        powers = u[None, :] ** torch.arange(2 + self.TERMS2, dtype=_F64, device=x.device)[:, None]
        self.P = place(powers[:2 + self.TERMS]).contiguous()  # u^j for the data moments
        self.PW = place(powers * wv).contiguous()  # w u^j for the Gram moments
        self.W0 = wv.sum()
        wy = Y if w is None else Y * w
        self.wy = place(wy)
        self.wy2 = (wy * Y).sum(1)  # sum w y^2 of every row
        self.inv_n = 1 / torch.arange(1, self.TERMS2, dtype=_F64, device=x.device)
        self.pow2 = (2.0 ** torch.arange(self.TERMS2, dtype=_F64, device=x.device))[:, None]

    def moments(self, c: torch.Tensor, rows: torch.Tensor | None):
        """The moments ``M_j`` and ``N_j`` at centres ``c`` of the rows ``rows`` (all when
        None), as :meth:`_windows` of ``TERMS`` and ``TERMS2`` terms for :meth:`sums`."""
        b = c.shape[0]
        wy = self.wy if rows is None else self.wy[rows]
        buf = wy.new_empty((4, b, wy.shape[1]))
        # z (the data times the basis) is used up before two (the double angles) reuses it
        s, co, z, two = buf[0], buf[1], buf[2:], buf[2:]
        if self.grid:  # e^{i c (far_j + near_l)} = e^{i c far_j} e^{i c near_l}
            zn, zf = c[:, None] * self.near, c[:, None] * self.far
            sn, cn = torch.sin(zn)[:, None, :], torch.cos(zn)[:, None, :]
            sf, cf = torch.sin(zf)[:, :, None], torch.cos(zf)[:, :, None]
            s3, c3 = s.view(b, self.J, self.L), co.view(b, self.J, self.L)
            torch.mul(sf, cn, out=s3).addcmul_(cf, sn)
            torch.mul(cf, cn, out=c3).addcmul_(sf, sn, value=-1)
        else:
            arg = torch.mul(c[:, None], self.u, out=co)
            torch.sin(arg, out=s)
            torch.cos(arg, out=co)
        torch.mul(wy, co, out=z[0])
        torch.mul(wy, s, out=z[1])
        mm = (self.P @ z.reshape(2 * b, -1).T).view(-1, 2, b).permute(2, 1, 0)
        torch.addcmul(s.new_ones(()), s, s, value=-2, out=two[0])  # cos 2 c u
        torch.mul(s, co, out=two[1]).mul_(2)  # sin 2 c u
        nn = (self.PW @ two.reshape(2 * b, -1).T).view(-1, 2, b).permute(2, 1, 0)
        return self._windows(mm, self.TERMS), self._windows(nn, self.TERMS2)

    @staticmethod
    def _windows(mom: torch.Tensor, terms: int) -> torch.Tensor:
        """From moments ``(b, 2, terms + 2)`` (real and imaginary parts of ``M_j``), the
        rows ``(b, 6, terms)`` whose products with the real series ``t^n / n!`` give
        ``Re D_q`` (rows 0-2) and ``Im D_q`` (rows 3-5): ``sum_n (i t)^n / n! M_{q+n} =
        i^-q sum_n t^n / n! (i^(q+n) M_{q+n})``, so the powers of ``i`` become a choice
        of part and sign per row and moment."""
        j = torch.arange(terms + 2, device=mom.device)
        # i^j M_j: j % 4 = 0: (re, im), 1: (-im, re), 2: (-re, -im), 3: (im, -re)
        signs = torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, 1.0, -1.0, -1.0]], dtype=_F64,
                             device=mom.device)[:, j % 4]
        odd = (j % 2 == 1)
        re = torch.where(odd, mom[:, 1], mom[:, 0]) * signs[0]
        im = torch.where(odd, mom[:, 0], mom[:, 1]) * signs[1]
        # i^-q: q = 0: (X, Y), 1: (Y, -X), 2: (-X, -Y) with X + iY = sum_n t^n/n! i^j M_j
        X, Y = [re[:, q:q + terms] for q in range(3)], [im[:, q:q + terms] for q in range(3)]
        return torch.stack([X[0], Y[1], -X[2], Y[0], -X[1], -Y[2]], 1)

    def sums(self, dw: torch.Tensor, sw: torch.Tensor, t: torch.Tensor):
        """Real and imaginary parts of ``D`` and ``S`` ``(b, 3)`` at ``c + t`` from the
        windows of :meth:`moments`."""
        a = torch.cumprod(t[:, None] * self.inv_n, 1)  # t^n / n!, n >= 1
        a = torch.cat([torch.ones_like(a[:, :1]), a], 1)[:, :, None]
        D = torch.bmm(dw, a[:, :self.TERMS])[..., 0]
        S = torch.bmm(sw, a * self.pow2)[..., 0]
        return D[:, 3:], D[:, :3], S[:, 3:], S[:, :3]


def _explained(g: torch.Tensor, im_d, re_d, im_s, re_s, W0):
    """``psi``, its first two derivatives in ``g`` and the linear coefficients ``(A, B)``
    at ``g`` from the parts of the sums ``D`` and ``S`` ``(B, 3)``; stacked with ``g`` as
    ``(B, 6)``."""
    # Gram matrix of (sin, cos); a ridge where both vanish on every sample (the Nyquist
    # frequency's sine, or f = 0) keeps the coefficients finite
    g11, g12, g22 = (W0 - re_s[:, 0]) / 2, im_s[:, 0] / 2, (W0 + re_s[:, 0]) / 2
    ridge = 1e-12 * (g11 + g22) + torch.finfo(_F64).tiny
    g11, g22 = g11 + ridge, g22 + ridge
    det = g11 * g22 - g12 * g12

    def solve(r1, r2):
        return (g22 * r1 - g12 * r2) / det, (g11 * r2 - g12 * r1) / det

    d1, d2 = im_d[:, 0], re_d[:, 0]
    v1, v2 = solve(d1, d2)
    psi = d1 * v1 + d2 * v2
    e1, e2 = re_d[:, 1], -im_d[:, 1]  # d'
    h1, h2 = -im_d[:, 2], -re_d[:, 2]  # d''
    p11, p12 = im_s[:, 1], re_s[:, 1]  # G' = [[p11, p12], [p12, -p11]]
    q11, q12 = 2 * re_s[:, 2], -2 * im_s[:, 2]  # G'' = [[q11, q12], [q12, -q11]]
    gv1, gv2 = p11 * v1 + p12 * v2, p12 * v1 - p11 * v2
    dpsi = 2 * (e1 * v1 + e2 * v2) - (v1 * gv1 + v2 * gv2)
    w1, w2 = solve(e1 - gv1, e2 - gv2)  # dv/dg
    d2psi = 2 * (h1 * v1 + h2 * v2 + e1 * w1 + e2 * w2 - w1 * gv1 - w2 * gv2) \
        - (q11 * (v1 * v1 - v2 * v2) + 2 * q12 * v1 * v2)
    return torch.stack([g, psi, dpsi, d2psi, v1, v2], 1)


def _newton(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Newton step on ``psi`` from each row of ``state`` (:func:`_explained`'s
    columns) where ``psi`` is concave there, else 0; and where it is."""
    d2psi = state[:, 3]
    concave = d2psi < 0
    return torch.where(concave, -state[:, 2] / torch.where(concave, d2psi, -1.0), 0.0), concave


def sine_variable_projection(x: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None,
                             within: torch.Tensor, f0: torch.Tensor, max_iter: int,
                             tol: float, verbose) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor, pd.DataFrame]:
    """Fit ``amplitude * sin(frequency * x + phase)`` to every row of ``Y`` ``(B, m)``
    from the frequencies ``f0`` ``(B,)``.

    ``x`` ``(m,)`` sorted distinct, ``w`` ``(m,)`` the weights of merged repeats or None,
    ``within`` ``(B,)`` the part of each row's sum of squares that merging removed.
    Returns ``theta`` ``(B, 3)`` (amplitude >= 0, frequency >= 0, phase), each row's
    weighted sum of squares on the distinct ``x``, whether it converged, and the history
    (the columns of the Levenberg-Marquardt solver's). One host synchronisation per step.
    """
    B, dev = Y.shape[0], Y.device
    exp = _Expansion(x, Y, w)
    R, W0, radius_valid = exp.R, exp.W0, exp.RADIUS
    total_w = float(x.shape[0]) if w is None else float(w.sum())
    g = f0.clamp_min(0) * R
    centre = g.clone()
    dw, sw = exp.moments(centre, None)
    # state columns: g, psi, dpsi, d2psi, A, B (_explained's) and the trust radius, which
    # starts at a quarter period over the range (about one periodogram bin)
    state = torch.cat([_explained(g, *exp.sums(dw, sw, torch.zeros_like(g)), W0),
                       torch.full((B, 1), math.pi / 2, dtype=_F64, device=dev)], 1)
    done_all = torch.zeros(B, dtype=torch.bool, device=dev)
    history = History(verbose)
    # every row steps until all have stopped (a stopped row's step is zero): at a few
    # operations on (B, terms) arrays per step, compacting the rows would cost more
    for it in range(1, max_iter + 1):
        g, psi, dpsi, d2psi, radius = state[:, :4].T.unbind(0) + (state[:, 6],)
        limit = tol * (exp.wy2 - psi + within)
        newton, concave = _newton(state)
        step = torch.where(concave, newton, torch.sign(dpsi) * radius)
        step = torch.maximum(torch.minimum(step, radius), -radius)
        step = torch.maximum(step, -g)  # frequency >= 0
        # a stationary point (no first-order gain within the radius) stays, whatever the
        # curvature, as for Gauss-Newton: the sine at the Nyquist frequency of integer x
        step = torch.where(done_all | (dpsi.abs() * radius <= limit), 0.0, step)
        g_new = g + step
        far = ((g_new - centre).abs() > radius_valid).nonzero()[:, 0]
        if far.numel():  # expand again where the series would not hold
            centre[far] = g_new[far]
            dw[far], sw[far] = exp.moments(g_new[far], far)
        new = _explained(g_new, *exp.sums(dw, sw, g_new - centre), W0)
        gain = new[:, 1] - psi  # the decrease of the sum of squares
        pred = step * (dpsi + 0.5 * step * d2psi)
        accept = gain >= 0
        kept = torch.where(accept[:, None], new, state[:, :6])
        # the next step from the kept point and its predicted decrease
        newton, concave = _newton(kept)
        next_step = torch.where(concave, newton.abs(), math.inf)
        next_gain = 0.5 * next_step * kept[:, 2].abs()
        scale = tol * (kept[:, 0] + tol * R)
        done_all |= ((gain.abs() <= limit) & (pred.abs() <= limit)) | (next_step <= scale) | \
            (next_gain <= tol * (exp.wy2 - kept[:, 1] + within)) | \
            (~accept & (step.abs() <= scale)) | (radius <= scale)
        at_edge = step.abs() >= 0.99 * radius
        radius = torch.where(accept, torch.where(at_edge, 2 * radius, radius),
                             step.abs() / 4)
        state = torch.cat([kept, radius[:, None]], 1)
        n_left, mean_cost = torch.stack(
            [(~done_all).sum().to(_F64), (exp.wy2 - kept[:, 1]).sum()]).tolist()
        history.record(it, mean_cost / (B * total_w), n_left)
        if not n_left:
            break
    # the last Newton step of every row, kept where it does not raise the sum of squares
    # (rows stop when the decrease it predicts is below tol; this takes it)
    g, psi = state[:, 0], state[:, 1]
    step = _newton(state)[0]
    step = torch.maximum(torch.minimum(step, radius_valid - (g - centre)),
                         -radius_valid - (g - centre)).clamp_min(-g)
    new = _explained(g + step, *exp.sums(dw, sw, g + step - centre), W0)
    out = torch.where((new[:, 1] >= psi)[:, None], new, state[:, :6])
    frequency = out[:, 0] / R
    amplitude = torch.hypot(out[:, 4], out[:, 5])
    # a sin(g u + p') = a sin(f x + p) with p = p' - f centre
    phase = torch.atan2(out[:, 5], out[:, 4]) - frequency * exp.centre
    theta = torch.stack([amplitude, frequency, phase], 1)
    cost = (exp.wy2 - out[:, 1]).clamp_min(0)
    return theta, cost, done_all, history.frame()
