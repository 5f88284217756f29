"""The model side of :class:`~neuroml.nn.parametric.ParametricRegressor`: preset
tuning curves, user functions batched with ``torch.func``, and the bounds transform.

Each preset holds its formula, a broadcasting torch function, its value and analytic
Jacobian for a batch of parameter vectors, default bounds, and a data-driven initial
guess for every neuron at once. The guesses profile the model over a grid of its
nonlinear parameters with the linear ones (baseline, amplitude) solved exactly by
weighted least squares for every grid point and neuron in one batched solve; the
``n_starts`` best grid points of each neuron are its starting points. The sine's
frequency grid is a periodogram (an FFT when the ``x`` values are evenly spaced).

Shapes: ``x`` is ``(m,)`` (one feature) or ``(m, d)``, ``Y`` is ``(m, N)`` (one column
per neuron), ``w`` is ``(m,)`` sample weights (counts of repeated ``x``) or None,
``theta`` is ``(B, k)``; values are ``(B, m)`` and Jacobians ``(B, k, m)``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ParameterError

__all__ = ["PRESETS", "Preset", "Model", "BoundTransform", "check_output", "sine_frequencies",
           "weighted_lstsq"]

_TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Preset:
    """One named model: formula, function, Jacobian, bounds and initial guesses."""

    name: str
    formula: str
    names: tuple[str, ...]
    function: Callable
    value_and_jac: Callable
    init: Callable
    bounds: dict = field(default_factory=dict)
    periodic: tuple[str, ...] = ()
    any_features: bool = False

    def param_names(self, n_features: int) -> tuple[str, ...]:
        """Parameter names for ``n_features`` input features."""
        if self.name == "linear":
            return ("b",) + tuple(f"w{j}" for j in range(n_features))
        return self.names


# ---------------------------------------------------------------------- helpers
def weighted_lstsq(basis: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None):
    """Least squares of every column of ``Y`` on the basis of every candidate at once.

    Parameters
    ----------
    basis : tensor of shape (C, p, m)
        ``p`` basis functions over the ``m`` samples for each of ``C`` candidates.
    Y : tensor of shape (m, N)
    w : tensor of shape (m,) or None

    Returns
    -------
    coef : tensor of shape (C, p, N)
    sse : tensor of shape (C, N)
        Weighted residual sum of squares of each candidate and column.
    """
    bw = basis if w is None else basis * w
    gram = bw @ basis.mT
    gram = gram + 1e-12 * gram.diagonal(dim1=-2, dim2=-1).amax(-1)[:, None, None] * torch.eye(
        gram.shape[-1], dtype=gram.dtype, device=gram.device)
    rhs = bw @ Y  # (C, p, N)
    coef = torch.linalg.solve(gram, rhs)
    yy = (Y * Y).sum(0) if w is None else (w[:, None] * Y * Y).sum(0)
    return coef, yy - (coef * rhs).sum(1)


def _best(score: torch.Tensor, n_starts: int, largest: bool = False) -> torch.Tensor:
    """Indices ``(N, S)`` of the ``n_starts`` smallest (``largest``: largest) entries of
    each column of ``score`` ``(C, N)``."""
    s = min(n_starts, score.shape[0])
    if s == 1:
        return _argbest(score, 0, largest)[:, None]
    idx = torch.topk(score.T, s, dim=1, largest=largest).indices
    if s < n_starts:  # fewer candidates than starts: repeat the best ones
        idx = idx[:, torch.arange(n_starts, device=idx.device) % s]
    return idx


def _profile(shapes: torch.Tensor, nonlinear: torch.Tensor, Y, w, n_starts: int,
             positive_amplitude: bool = False) -> torch.Tensor:
    """Starts ``(N, S, 2 + q)`` = (b, a, *nonlinear) from a grid of bump shapes.

    ``shapes`` ``(C, m)`` is the model's shape at each of ``C`` grid points of its
    ``q`` nonlinear parameters ``nonlinear`` ``(C, q)``; the model is ``b + a * shape``,
    whose weighted least-squares ``b`` and ``a`` have a closed form: with centred sums,
    ``a = S_gy / S_gg`` explains ``S_gy**2 / S_gg`` of the sum of squares.
    """
    wv = torch.ones_like(shapes[0]) if w is None else w
    s0 = wv.sum()
    mean_g = (shapes @ wv) / s0  # (C,)
    gc = shapes - mean_g[:, None]
    gcw = gc * wv
    s_gg = (gcw * gc).sum(1).clamp_min(torch.finfo(shapes.dtype).tiny)  # (C,)
    mean_y = (wv @ Y) / s0  # (N,)
    s_gy = gcw @ Y  # (C, N); centring Y is not needed: the columns of gcw sum to 0
    explained = s_gy * s_gy / s_gg[:, None]
    if positive_amplitude:
        explained = torch.where(s_gy > 0, explained, -1.0)
    idx = _best(explained, n_starts, largest=True)  # (N, S)
    n = torch.arange(Y.shape[1], device=Y.device)[:, None]
    a = s_gy[idx, n] / s_gg[idx]
    b = mean_y[:, None] - a * mean_g[idx]
    return torch.cat([b[..., None], a[..., None], nonlinear[idx]], -1)


def _span(x: torch.Tensor) -> tuple[float, float]:
    lo, hi = float(x.min()), float(x.max())
    return lo, max(hi - lo, 1e-12)


# ---------------------------------------------------------------------- linear
def linear(x, b, *w):
    """``b + sum_j w_j x_j``."""
    x2 = x.reshape(x.shape[0], -1)
    out = b
    for j, wj in enumerate(w):
        out = out + wj * x2[:, j]
    return out


def _linear_vj(x, theta, out=None):
    x2 = x.reshape(x.shape[0], -1)
    design = torch.cat([torch.ones_like(x2[:, :1]), x2], 1).T  # (k, m)
    value, J = _buffers(theta, x.shape[0], out)
    J.copy_(design)
    return value.copy_(theta @ design), J


def _linear_init(x, Y, w, n_starts):
    x2 = x.reshape(x.shape[0], -1)
    design = torch.cat([torch.ones_like(x2[:, :1]), x2], 1)  # (m, k)
    sw = torch.ones_like(x2[:, 0]) if w is None else w.sqrt()
    coef = torch.linalg.pinv(design * sw[:, None]) @ (Y * sw[:, None])  # (k, N), minimum norm
    return coef.T[:, None, :].expand(-1, n_starts, -1).clone()


# ---------------------------------------------------------------------- sine
def sine(x, amplitude, frequency, phase):
    """``amplitude * sin(frequency * x + phase)``."""
    return amplitude * torch.sin(frequency * x + phase)


def _buffers(theta: torch.Tensor, m: int, out: torch.Tensor | None):
    """The values ``(B, m)`` and Jacobian ``(B, k, m)`` as views of one ``(B, k + 1, m)``
    buffer (``out``, reused across iterations, or a new one): rows ``0..k-1`` hold the
    Jacobian, row ``k`` the values, filled with ``out=`` and in-place operations."""
    k = theta.shape[1]
    if out is None:
        out = theta.new_empty((theta.shape[0], k + 1, m))
    return out[:, k], out[:, :k]


def _sine_vj(x, theta, out=None):
    a, f, p = theta.T[:, :, None]
    value, J = _buffers(theta, x.shape[0], out)
    z = torch.addcmul(p, f, x, out=value)  # the phase, in the values' row until the end
    torch.sin(z, out=J[:, 0])
    torch.cos(z, out=J[:, 2]).mul_(a)
    torch.mul(J[:, 2], x, out=J[:, 1])
    return torch.mul(J[:, 0], a, out=value), J


def _argbest(a: torch.Tensor, dim: int, largest: bool = True) -> torch.Tensor:
    """The index of the largest (or smallest) value along ``dim``. On the CPU through
    NumPy, whose SIMD argmax is 3-6x faster than torch's (measured: 1,000 x 256 single
    precision numbers along rows, 60 us against 270 us; 96 x 1,000 double precision
    along columns, 69 us against 200 us)."""
    if a.device.type == "cpu":
        return torch.from_numpy((np.argmax if largest else np.argmin)(a.numpy(), axis=dim))
    return a.argmax(dim) if largest else a.argmin(dim)


def _neuron_blocks(x, Y) -> list[slice]:
    """Blocks of neurons that keep the spectra small (memory the allocator reuses from
    block to block): about 2 MB of single-precision spectrum each for evenly spaced x
    (more for irregular x, whose periodogram is in double precision)."""
    size = max(1, 2**18 // max(x.shape[0], 1))
    return [slice(i, i + size) for i in range(0, max(Y.shape[1], 1), size)]


def _sine_init(x, Y, w, n_starts):
    """Frequencies as :func:`sine_frequencies`, then amplitude and phase exactly (linear
    least squares in ``A sin(f x) + B cos(f x)``)."""
    return torch.cat([_sine_amplitude_phase(x, Y[:, b], w, _sine_frequencies(x, Y[:, b], w,
                                                                             n_starts))
                      for b in _neuron_blocks(x, Y)])


def sine_frequencies(x, Y, w, n_starts):
    """Starting frequencies ``(N, n_starts)``: the highest periodogram peaks of each
    neuron, refined between grid points by a parabola through the log power of each peak
    and its neighbours."""
    return torch.cat([_sine_frequencies(x, Y[:, b], w, n_starts) for b in _neuron_blocks(x, Y)])


def _sine_frequencies(x, Y, w, n_starts):
    m = x.shape[0]
    wy = Y if w is None else Y * w[:, None]
    gaps = x[1:] - x[:-1] if m > 1 else x.new_ones(1)
    lo, span = _span(x)
    step = float(gaps.min()) if m > 1 else 1.0
    uniform = m > 2 and float((gaps - gaps.mean()).abs().max()) <= 1e-6 * float(gaps.mean())
    if uniform:  # evenly spaced x (after merging repeats, sorted): an FFT of each neuron
        n_fft = 1 << max(int(math.ceil(math.log2(2 * m))), 3)  # 2x oversampled
        # in single precision (a peak's place needs no more, and it is twice as fast),
        # each neuron divided by its largest value so that no power over- or underflows
        # (data anywhere within single precision's range, 1e-38 to 3e38)
        y32 = wy.T.to(torch.float32, memory_format=torch.contiguous_format)
        y32 /= y32.abs().amax(1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        spectrum = torch.fft.rfft(y32, n=n_fft, dim=1)
        spectrum = torch.view_as_real(spectrum).square()
        power = spectrum[..., 0] + spectrum[..., 1]  # (N, n_fft // 2 + 1)
        d_omega = _TWO_PI / (n_fft * step)
    else:  # a periodogram up to the Nyquist frequency of the median spacing, 4x oversampled
        typical = float(gaps.median()) if m > 1 else span
        hi = math.pi / max(typical, 1e-12 * span)
        n_grid = int(min(max(4 * hi * span / math.pi, 16), 4096))
        d_omega = hi / n_grid
        zx = (d_omega * torch.arange(n_grid + 1, dtype=x.dtype, device=x.device))[:, None] * x
        power = ((torch.cos(zx) @ wy) ** 2 + (torch.sin(zx) @ wy) ** 2).T
    n_freq = power.shape[1]
    if n_starts == 1 or n_freq <= 3:  # the highest point (frequency 0 is not a sine)
        idx = _argbest(power[:, 1:], 1)[:, None] + 1
    else:  # one start per local maximum (the last frequency included), highest first
        above = power[:, 1:]
        edge = torch.full_like(above[:, :1], -math.inf)
        peak = (above >= torch.cat([edge, above[:, :-1]], 1)) & \
            (above >= torch.cat([above[:, 1:], edge], 1))
        idx = _best(torch.where(peak, above, above - above.amax(1, keepdim=True) - 1).T,
                    n_starts, largest=True) + 1
    freq = idx.to(x.dtype)
    if n_freq > 2:  # a parabola through the log power at idx - 1, idx, idx + 1
        inner = (idx > 0) & (idx < n_freq - 1)
        i = idx.clamp(1, n_freq - 2)
        tiny = torch.finfo(power.dtype).tiny
        lp = torch.log(torch.gather(power, 1, torch.cat([i - 1, i, i + 1], 1)).clamp_min(tiny))
        left, centre, right = lp.reshape(len(lp), 3, -1).unbind(1)
        curvature = left - 2 * centre + right
        shift = (0.5 * (left - right) / curvature.clamp_max(-tiny)).clamp(-0.5, 0.5)
        freq = freq + torch.where(inner & (curvature < 0), shift, 0.0)
    return freq * d_omega  # (N, S)


def _sine_amplitude_phase(x, Y, w, freq):
    """Starts ``(N, S, 3)``: the least-squares amplitude and phase at each frequency
    ``freq`` ``(N, S)``; one product gives the 2 x 2 normal equations of every start."""
    m, n_starts = x.shape[0], freq.shape[1]
    n_neurons = Y.shape[1]
    A = x.new_empty((n_neurons, n_starts, 3, m))
    z = freq[..., None] * x
    torch.sin(z, out=A[:, :, 0])
    torch.cos(z, out=A[:, :, 1])
    A[:, :, 2] = Y.T[:, None, :]
    A = A.reshape(-1, 3, m)
    M = (A if w is None else A * w) @ A[:, :2].mT  # (N * S, 3, 2)
    ss, sc, cc, sy, cy = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1], M[:, 2, 0], M[:, 2, 1]
    ridge = 1e-12 * (ss + cc) + torch.finfo(x.dtype).tiny  # a sine (or cosine) that vanishes
    ss, cc = ss + ridge, cc + ridge                       # on every x: no runaway amplitude
    det = ss * cc - sc * sc
    coef_s, coef_c = (cc * sy - sc * cy) / det, (ss * cy - sc * sy) / det
    amplitude = torch.hypot(coef_s, coef_c).reshape(n_neurons, n_starts)
    phase = torch.atan2(coef_c, coef_s).reshape(n_neurons, n_starts)
    return torch.stack([amplitude, freq, phase], -1)


# ---------------------------------------------------------------------- cosine tuning
def cosine(x, b, a, mu):
    """``b + a * cos(x - mu)``."""
    return b + a * torch.cos(x - mu)


def _cos_sin(x, mu):
    """``cos(x - mu)`` and ``sin(x - mu)`` ``(B, m)`` from the angle-difference identities:
    products instead of transcendental functions over the whole batch."""
    cx, sx, cm, sm = torch.cos(x), torch.sin(x), torch.cos(mu), torch.sin(mu)
    return torch.addcmul(cx * cm, sx, sm), torch.addcmul(sx * cm, cx, sm, value=-1)


def _cosine_vj(x, theta, out=None):
    b, a, mu = theta.T[:, :, None]
    c, s = _cos_sin(x, mu)
    value, J = _buffers(theta, x.shape[0], out)
    J[:, 0] = 1
    J[:, 1] = c
    torch.mul(s, a, out=J[:, 2])
    return torch.addcmul(b, a, c, out=value), J


def _cosine_init(x, Y, w, n_starts):
    """The exact least-squares fit (the model is linear in b, a cos mu, a sin mu)."""
    basis = torch.stack([torch.ones_like(x), torch.cos(x), torch.sin(x)])[None]
    coef = weighted_lstsq(basis, Y, w)[0][0]  # (3, N)
    a = torch.hypot(coef[1], coef[2])
    mu = torch.atan2(coef[2], coef[1])
    shift = _TWO_PI * torch.arange(n_starts, dtype=x.dtype, device=x.device) / n_starts
    mu = torch.remainder(mu[:, None] + shift + math.pi, _TWO_PI) - math.pi
    return torch.stack([coef[0][:, None].expand_as(mu), a[:, None].expand_as(mu), mu], -1)


# ---------------------------------------------------------------------- von Mises
def von_mises(x, b, a, kappa, mu):
    """``b + a * exp(kappa * (cos(x - mu) - 1))``."""
    return b + a * torch.exp(kappa * (torch.cos(x - mu) - 1))


def _von_mises_vj(x, theta, out=None):
    b, a, kappa, mu = theta.T[:, :, None]
    c, s = _cos_sin(x, mu)
    value, J = _buffers(theta, x.shape[0], out)
    J[:, 0] = 1
    cm1 = c.sub_(1)
    torch.exp(cm1.mul(kappa), out=J[:, 1])
    ae = torch.mul(J[:, 1], a, out=value)
    torch.mul(ae, cm1, out=J[:, 2])
    torch.mul(s.mul_(kappa), ae, out=J[:, 3])
    return ae.add_(b), J


def _von_mises_init(x, Y, w, n_starts):
    """Grid of preferred directions (16) x concentrations (6, 0.25-32)."""
    mu = torch.arange(16, dtype=x.dtype, device=x.device) * (_TWO_PI / 16) - math.pi
    kappa = torch.logspace(math.log10(0.25), math.log10(32), 6, dtype=x.dtype, device=x.device)
    mu, kappa = (g.reshape(-1) for g in torch.meshgrid(mu, kappa, indexing="ij"))
    shapes = torch.exp(kappa[:, None] * (torch.cos(x[None] - mu[:, None]) - 1))
    return _profile(shapes, torch.stack([kappa, mu], 1), Y, w, n_starts)


# ---------------------------------------------------------------------- Gaussian
def gaussian(x, b, a, mu, sigma):
    """``b + a * exp(-(x - mu)**2 / (2 sigma**2))``."""
    return b + a * torch.exp(-((x - mu) ** 2) / (2 * sigma**2))


def _gaussian_vj(x, theta, out=None):
    b, a, mu, sigma = theta.T[:, :, None]
    d = (x - mu).div_(sigma)
    value, J = _buffers(theta, x.shape[0], out)
    J[:, 0] = 1
    torch.exp(d * d * -0.5, out=J[:, 1])
    ae = torch.mul(J[:, 1], a, out=value)
    torch.mul(ae, d.div(sigma), out=J[:, 2])
    torch.mul(J[:, 2], d, out=J[:, 3])
    return ae.add_(b), J


def _gaussian_init(x, Y, w, n_starts):
    """Grid of centres (16 over the range of x) x widths (8, 1/50 to 1 of the range)."""
    lo, span = _span(x)
    mu = lo + span * torch.linspace(0, 1, 16, dtype=x.dtype, device=x.device)
    sigma = span * torch.logspace(math.log10(0.02), 0, 8, dtype=x.dtype, device=x.device)
    mu, sigma = (g.reshape(-1) for g in torch.meshgrid(mu, sigma, indexing="ij"))
    shapes = torch.exp(-0.5 * ((x[None] - mu[:, None]) / sigma[:, None]) ** 2)
    return _profile(shapes, torch.stack([mu, sigma], 1), Y, w, n_starts)


# ---------------------------------------------------------------------- sigmoid
def sigmoid(x, b, a, x0, slope):
    """``b + a / (1 + exp(-slope * (x - x0)))``."""
    return b + a * torch.sigmoid(slope * (x - x0))


def _sigmoid_vj(x, theta, out=None):
    b, a, x0, slope = theta.T[:, :, None]
    d = x - x0
    value, J = _buffers(theta, x.shape[0], out)
    J[:, 0] = 1
    s = torch.sigmoid(slope * d, out=J[:, 1])
    ads = (1 - s).mul_(s).mul_(a)
    torch.mul(ads, -slope, out=J[:, 2])
    torch.mul(ads, d, out=J[:, 3])
    return torch.addcmul(b, a, s, out=value), J


def _sigmoid_init(x, Y, w, n_starts):
    """Grid of midpoints (12 inside the range of x) x slopes (+-, 6 each)."""
    lo, span = _span(x)
    x0 = lo + span * torch.linspace(0.04, 0.96, 12, dtype=x.dtype, device=x.device)
    steep = (4 / span) * torch.logspace(math.log10(0.5), math.log10(16), 6, dtype=x.dtype,
                                        device=x.device)
    slope = torch.cat([steep, -steep])
    x0, slope = (g.reshape(-1) for g in torch.meshgrid(x0, slope, indexing="ij"))
    shapes = torch.sigmoid(slope[:, None] * (x[None] - x0[:, None]))
    return _profile(shapes, torch.stack([x0, slope], 1), Y, w, n_starts,
                    positive_amplitude=True)


PRESETS: dict[str, Preset] = {
    p.name: p for p in [
        Preset("linear", "b + w0 * x0 + ... + w{d-1} * x{d-1}", ("b",), linear, _linear_vj,
               _linear_init, any_features=True),
        Preset("sine", "amplitude * sin(frequency * x + phase)",
               ("amplitude", "frequency", "phase"), sine, _sine_vj, _sine_init,
               {"amplitude": (0.0, math.inf), "frequency": (0.0, math.inf)}, ("phase",)),
        Preset("cosine", "b + a * cos(x - mu)", ("b", "a", "mu"), cosine, _cosine_vj,
               _cosine_init, {"a": (0.0, math.inf)}, ("mu",)),
        Preset("von_mises", "b + a * exp(kappa * (cos(x - mu) - 1))", ("b", "a", "kappa", "mu"),
               von_mises, _von_mises_vj, _von_mises_init, {"kappa": (0.0, math.inf)}, ("mu",)),
        Preset("gaussian", "b + a * exp(-(x - mu)**2 / (2 * sigma**2))",
               ("b", "a", "mu", "sigma"), gaussian, _gaussian_vj, _gaussian_init,
               {"sigma": (0.0, math.inf)}),
        Preset("sigmoid", "b + a / (1 + exp(-slope * (x - x0)))", ("b", "a", "x0", "slope"),
               sigmoid, _sigmoid_vj, _sigmoid_init, {"a": (0.0, math.inf)}),
    ]
}


# ---------------------------------------------------------------------- models
class Model:
    """A preset or a user function as batched callables over ``theta`` ``(B, k)``."""

    def __init__(self, model, n_features: int, owner: str):
        self.preset = PRESETS.get(model) if isinstance(model, str) else None
        if self.preset is not None:
            if n_features != 1 and not self.preset.any_features:
                raise ParameterError(
                    f"The '{model}' model of {owner} takes one feature: x of shape "
                    f"(n_samples,) or (n_samples, 1); got {n_features} features. Use "
                    "model='linear' or a function of your own for multi-dimensional x.")
            self.names = self.preset.param_names(n_features)
            self.defaults: dict = {}
            self.bounds = dict(self.preset.bounds)
            self.periodic = self.preset.periodic
            return
        self.func = model
        self.bounds, self.periodic = {}, ()
        self.names, self.defaults = _signature_parameters(model, owner)

    def value(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Model values ``(B, m)``."""
        if self.preset is not None:
            return self.preset.function(x, *theta.T[:, :, None])
        names = self.names
        return torch.func.vmap(lambda t: self.func(x, **dict(zip(names, t.unbind(0)))))(theta)

    def value_and_jac(self, x: torch.Tensor, theta: torch.Tensor,
                      out: torch.Tensor | None = None):
        """Values ``(B, m)`` and Jacobians ``(B, k, m)`` with respect to ``theta``,
        written into ``out`` ``(B, k + 1, m)`` when given (row ``k`` the values)."""
        if self.preset is not None:
            return self.preset.value_and_jac(x, theta, out)
        k = theta.shape[1]
        basis = torch.eye(k, dtype=theta.dtype, device=theta.device)[:, None, :]
        basis = basis.expand(k, *theta.shape)

        def along(t):
            return torch.func.jvp(lambda th: self.value(x, th), (theta,), (t,))

        with warnings.catch_warnings():
            # torch scripts its forward-mode decompositions on first use (once per process)
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated",
                                    DeprecationWarning)
            values, tangents = torch.func.vmap(along)(basis)
        if out is None:
            return values[0], tangents.transpose(0, 1)
        value, J = _buffers(theta, x.shape[0], out)
        return value.copy_(values[0]), J.copy_(tangents.transpose(0, 1))


def _signature_parameters(func, owner: str) -> tuple[tuple[str, ...], dict]:
    """Names of the parameters after ``x`` and their numeric defaults."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise ParameterError(f"Cannot read the signature of the model function {func!r} of "
                             f"{owner}; pass a Python function f(x, p1, p2, ...).") from None
    kinds = inspect.Parameter
    if not params or params[0].kind not in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD):
        raise ParameterError(f"The model function of {owner} must take x as its first argument,"
                             " then one named argument per parameter: f(x, p1, p2, ...).")
    bad = [p.name for p in params[1:] if p.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)]
    if bad or len(params) < 2:
        raise ParameterError(
            f"The model function of {owner} must name its parameters after x, as in "
            f"f(x, amplitude, frequency); got signature {inspect.signature(func)}"
            + (f" (*{bad[0]} / **{bad[0]} cannot be fitted)." if bad else "."))
    defaults = {p.name: float(p.default) for p in params[1:]
                if isinstance(p.default, numbers.Real) and not isinstance(p.default, bool)}
    return tuple(p.name for p in params[1:]), defaults


def check_output(model: Model, xm: torch.Tensor, theta0: torch.Tensor, owner: str) -> None:
    """Call the user's function once for one neuron; it must return ``(n_samples,)``."""
    args = dict(zip(model.names, theta0.unbind(0)))
    shape = tuple(xm.shape)
    try:
        out = model.func(xm, **args)
    except Exception as err:
        raise ParameterError(f"The model function of {owner} failed on x of shape {shape} with "
                             f"scalar parameters: {type(err).__name__}: {err}") from err
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or got != shape[:1]:
        raise ParameterError(
            f"The model function of {owner} must return a tensor of shape (n_samples,) = "
            f"{shape[:1]} for x of shape {shape} and one neuron's scalar parameters; got "
            f"{got}.")
    try:
        model.value_and_jac(xm, theta0[None])
    except Exception as err:
        raise ParameterError(
            f"The model function of {owner} cannot be batched over neurons with "
            f"torch.func.vmap and jvp ({type(err).__name__}: {err}); write it with torch "
            "operations only, without Python control flow on parameter values, .item() or "
            "in-place updates of the parameters.") from err


# ---------------------------------------------------------------------- bounds
class BoundTransform:
    """Smooth map from unconstrained ``u`` to bounded parameters ``theta`` (per column).

    Two-sided bounds: ``lo + (hi - lo) * sigmoid(u)``; a lower bound only:
    ``lo + softplus(u)``; an upper bound only: ``hi - softplus(u)``; none: ``u``.
    Written as ``theta = offset + c_u u + c_sig sigmoid(u) + c_soft softplus(u)`` with
    per-column coefficients, a few operations per evaluation.
    """

    def __init__(self, lower: torch.Tensor, upper: torch.Tensor):
        self.lo, self.hi = lower, upper
        fin_lo, fin_hi = torch.isfinite(lower), torch.isfinite(upper)
        self.both = fin_lo & fin_hi
        self.lower_only = fin_lo & ~fin_hi
        self.upper_only = ~fin_lo & fin_hi
        self.lo0 = torch.where(fin_lo, lower, torch.zeros_like(lower))
        self.hi0 = torch.where(fin_hi, upper, torch.zeros_like(upper))
        one_sided = self.lower_only | self.upper_only
        self.has_sig, self.has_soft = bool(self.both.any()), bool(one_sided.any())
        self.bounded = self.has_sig or self.has_soft
        zero = torch.zeros_like(lower)
        self.offset = torch.where(self.upper_only, self.hi0, self.lo0)
        self.c_u = (~(self.both | one_sided)).to(lower.dtype)
        self.c_sig = torch.where(self.both, self.hi0 - self.lo0, zero)
        self.c_soft = torch.where(self.lower_only, 1.0, torch.where(self.upper_only, -1.0, zero))

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``theta`` and ``d theta / d u`` (None when nothing is bounded)."""
        if not self.bounded:
            return u, None
        sig = torch.sigmoid(u)
        theta = torch.addcmul(self.offset, self.c_u, u)
        grad = self.c_u + self.c_soft * sig
        if self.has_sig:
            theta = theta + self.c_sig * sig
            grad = grad + self.c_sig * sig * (1 - sig)
        if self.has_soft:
            theta = theta + self.c_soft * torch.nn.functional.softplus(u)
        return theta, grad

    def inverse(self, theta: torch.Tensor) -> torch.Tensor:
        """``u`` for ``theta`` strictly inside the bounds."""
        if not self.bounded:
            return theta
        width = self.hi0 - self.lo0
        frac = ((theta - self.lo0) / torch.where(self.both, width, torch.ones_like(width)))
        logit = torch.logit(frac.clamp(1e-12, 1 - 1e-12))
        gap = torch.where(self.lower_only, theta - self.lo0, self.hi0 - theta).clamp_min(1e-300)
        inv_soft = torch.where(gap > 30, gap, torch.log(torch.expm1(gap.clamp_max(30))))
        return torch.where(self.both, logit,
                           torch.where(self.lower_only | self.upper_only, inv_soft, theta))

    def interior(self, theta: torch.Tensor) -> torch.Tensor:
        """``theta`` moved just inside its bounds (guesses that land on or past a bound)."""
        scale = torch.maximum(theta.abs(), torch.ones_like(theta))
        margin = torch.where(self.both, (self.hi0 - self.lo0) * 1e-6, scale * 1e-6)
        lo = torch.where(torch.isfinite(self.lo), self.lo + margin, torch.full_like(theta, -math.inf))
        hi = torch.where(torch.isfinite(self.hi), self.hi - margin, torch.full_like(theta, math.inf))
        return torch.minimum(torch.maximum(theta, lo), hi)
