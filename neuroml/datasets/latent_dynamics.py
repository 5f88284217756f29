"""Spiking units driven by a nonlinear latent oscillator, with behaviour a nonlinear readout."""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..errors import ParameterError
from ._common import check_random_state, check_scalar, draw_baselines

__all__ = ["make_latent_dynamics"]

_OWNER = "make_latent_dynamics"
#: Euler-Maruyama sub-steps per time bin.
_SUBSTEPS = 10


def make_latent_dynamics(n_units: int = 60, n_trials: int = 200, n_times: int = 100, *,
                         dt: float = 0.02, frequency=(1.0, 2.0), mu: float = 1.5,
                         modulation: float = 0.8, baseline_rate: float = 15.0,
                         noise: float = 0.1, min_length: int | None = None,
                         return_latents: bool = False, random_state=None):
    """Simulate trials of spike counts driven by nonlinear latent dynamics, and a behaviour.

    The behaviour is a nonlinear function of the latent state, so a decoder must both
    track the latent state from noisy spikes (integrate over time) and apply a
    nonlinearity: a recurrent decoder can, a linear filter of recent spike counts
    (Wiener filter) cannot. With the defaults a ridge regression on 10 bins of spike
    history reaches R^2 ~0.6 on held-out trials, an LSTM ~0.9.

    **Latent dynamics.** A two-dimensional Van der Pol oscillator with noise, run at a
    frequency drawn per trial: in time scaled by ``w = 2 pi f``, with ``f`` uniform in
    ``frequency`` (Hz),

    ``dx = w v dt``,  ``dv = w (mu (1 - x**2) v - x) dt + noise sqrt(w) dW``,

    integrated by semi-implicit Euler-Maruyama (``x`` first, then ``v`` from the new
    ``x``: no energy drift for ``mu=0``) with 10 sub-steps per bin from a state uniform
    in ``[-2.5, 2.5]**2`` (trials start off the limit cycle). ``mu`` sets the
    nonlinearity of the limit cycle: 0 is a harmonic oscillator at ``f`` Hz; larger
    values give relaxation oscillations, a little slower than ``f``. The latent state ``s = (x, v)`` is each coordinate divided by its
    standard deviation over the simulated session, sampled at the end of every bin.

    **Spikes.** Unit ``i`` fires Poisson counts in each bin at the rate
    ``b_i exp(c_i . s - modulation**2 / 2)``, where ``c_i`` is a random direction of
    norm ``modulation`` and ``b_i`` log-uniform within a factor ``e**0.5`` of
    ``baseline_rate`` (Hz): the log rate is linear in the latent state.

    **Behaviour.** Two channels, the full-wave rectified latent state
    ``behaviour = (|x|, |v|)`` (e.g. the speed along each axis of an effector whose
    velocity is the latent state). It is an even function of the state, while the
    spike counts depend on the state through a tilted exponential, so a linear readout
    of the counts captures only part of it.

    Parameters
    ----------
    n_units : int, default=60
        Units (>= 1).
    n_trials : int, default=200
        Trials (>= 1).
    n_times : int, default=100
        Time bins per trial (>= 2).
    dt : float, default=0.02
        Bin width in seconds (> 0).
    frequency : (float, float), default=(1.0, 2.0)
        Range of the per-trial oscillation frequency in Hz (0 < low <= high).
    mu : float, default=1.5
        Van der Pol nonlinearity (>= 0).
    modulation : float, default=0.8
        Norm of each unit's loading ``c_i`` (>= 0): how strongly the latent state
        modulates the log rate.
    baseline_rate : float, default=15.0
        Typical rate in Hz (> 0).
    noise : float, default=0.1
        Standard deviation of the latent process noise (>= 0).
    min_length : int or None, default=None
        None: every trial has ``n_times`` bins. An int in ``[1, n_times]``: each trial's
        length is uniform in ``[min_length, n_times]`` and its later bins are NaN in
        both outputs (end padding).
    return_latents : bool, default=False
        Also return the latent state.
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the same int gives identical data.

    Returns
    -------
    counts : xarray.DataArray of shape (n_trials, n_times, n_units), dims ("trial", "time", "unit")
        Spike counts (float64, NaN at padded steps). Coordinates: ``trial`` (0 ..
        n_trials - 1) with ``frequency`` (Hz) and ``length`` (valid bins) along it,
        ``time`` (bin centres in seconds), ``unit`` with ``baseline_rate`` (Hz) and the
        loadings ``loading_x``, ``loading_v`` along it. ``attrs`` hold the generating
        parameters.
    behaviour : xarray.DataArray of shape (n_trials, n_times, 2), dims ("trial", "time", "channel")
        ``(|x|, |v|)``, channels ``["abs_x", "abs_v"]``, same trial and time coordinates.
    latents : xarray.DataArray of shape (n_trials, n_times, 2), dims ("trial", "time", "latent")
        The standardised latent state ``s``, latents ``["x", "v"]``; only with
        ``return_latents=True``.

    Raises
    ------
    ParameterError
        When a parameter is out of range; the message names it.

    Examples
    --------
    >>> counts, behaviour = make_latent_dynamics(n_units=10, n_trials=4, random_state=0)
    >>> counts.dims, behaviour.dims
    (('trial', 'time', 'unit'), ('trial', 'time', 'channel'))
    >>> counts.shape, behaviour.shape
    ((4, 100, 10), (4, 100, 2))
    """
    check_scalar("n_units", n_units, numbers.Integral, _OWNER, 1, None)
    check_scalar("n_trials", n_trials, numbers.Integral, _OWNER, 1, None)
    check_scalar("n_times", n_times, numbers.Integral, _OWNER, 2, None)
    check_scalar("dt", dt, numbers.Real, _OWNER, 0, None, "neither")
    check_scalar("mu", mu, numbers.Real, _OWNER, 0, None)
    check_scalar("modulation", modulation, numbers.Real, _OWNER, 0, None)
    check_scalar("baseline_rate", baseline_rate, numbers.Real, _OWNER, 0, None, "neither")
    check_scalar("noise", noise, numbers.Real, _OWNER, 0, None)
    if min_length is not None:
        check_scalar("min_length", min_length, numbers.Integral, _OWNER, 1, n_times)
    if not isinstance(return_latents, bool | np.bool_):
        raise ParameterError(f"The 'return_latents' parameter of {_OWNER} must be an instance "
                             f"of 'bool'. Got {return_latents!r} instead.")
    try:
        f_lo, f_hi = (float(v) for v in frequency)
    except (TypeError, ValueError):
        f_lo = f_hi = float("nan")
    if not (np.isfinite(f_lo) and np.isfinite(f_hi) and 0 < f_lo <= f_hi):
        raise ParameterError(
            f"The 'frequency' parameter of {_OWNER} must be (low, high) in Hz with "
            f"0 < low <= high. Got {frequency!r} instead.")
    rng = check_random_state(random_state, _OWNER)

    # ---- latent dynamics, all trials at once
    freq = rng.uniform(f_lo, f_hi, n_trials)
    w = 2 * np.pi * freq
    x, v = rng.uniform(-2.5, 2.5, (2, n_trials))
    h = dt / _SUBSTEPS
    kick = noise * np.sqrt(w * h)
    z = np.empty((n_trials, n_times, 2))
    for t in range(n_times):
        eps = rng.normal(size=(_SUBSTEPS, n_trials))
        for j in range(_SUBSTEPS):
            x = x + w * h * v
            v = v + w * h * (mu * (1 - x**2) * v - x) + kick * eps[j]
        z[:, t, 0], z[:, t, 1] = x, v
    s = z / z.reshape(-1, 2).std(axis=0)

    # ---- spikes and behaviour
    baselines = draw_baselines(n_units, baseline_rate, rng)
    C = rng.normal(size=(n_units, 2))
    C *= modulation / np.linalg.norm(C, axis=1, keepdims=True)
    rates = baselines * np.exp(s @ C.T - modulation**2 / 2)
    counts = rng.poisson(rates * dt).astype(np.float64)
    behaviour = np.abs(s)

    if min_length is None:
        lengths = np.full(n_trials, n_times, dtype=np.int64)
    else:
        lengths = rng.integers(min_length, n_times + 1, n_trials).astype(np.int64)
        pad = np.arange(n_times)[None] >= lengths[:, None]
        counts[pad] = np.nan
        behaviour[pad] = np.nan
        s[pad] = np.nan

    trial_coords = {"trial": np.arange(n_trials), "frequency": ("trial", freq),
                    "length": ("trial", lengths)}
    time = (np.arange(n_times) + 0.5) * dt
    attrs = {"generator": _OWNER, "dt": float(dt), "mu": float(mu),
             "modulation": float(modulation), "baseline_rate": float(baseline_rate),
             "noise": float(noise), "frequency_low": f_lo, "frequency_high": f_hi,
             "rate_model": "rate_i = b_i * exp(c_i . s - modulation**2 / 2); "
                           "behaviour = |s|; s = standardised Van der Pol state (x, v)"}
    counts_da = xr.DataArray(
        counts, dims=("trial", "time", "unit"), name="counts", attrs=attrs,
        coords={**trial_coords, "time": time, "unit": np.arange(n_units),
                "baseline_rate": ("unit", baselines), "loading_x": ("unit", C[:, 0]),
                "loading_v": ("unit", C[:, 1])})
    behaviour_da = xr.DataArray(
        behaviour, dims=("trial", "time", "channel"), name="behaviour",
        coords={**trial_coords, "time": time, "channel": ["abs_x", "abs_v"]})
    if not return_latents:
        return counts_da, behaviour_da
    latents_da = xr.DataArray(
        s, dims=("trial", "time", "latent"), name="latents",
        coords={**trial_coords, "time": time, "latent": ["x", "v"]})
    return counts_da, behaviour_da, latents_da
