"""A center-out reaching session driven by planted rotational latent dynamics."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .._validation import check_param
from ..errors import ParameterError
from ..io.recording import Recording, make_signal
from ._common import (
    SESSION_START,
    check_less,
    check_random_state,
    check_scalar,
    draw_baselines,
    spikes_from_segments,
    units_table,
)

__all__ = ["make_reaching"]

_OWNER = "make_reaching"

#: Reach length in metres (the integral of the hand speed over one movement).
REACH_DISTANCE = 0.1


def make_reaching(n_units: int = 100, n_trials: int = 200, *, n_conditions: int = 8,
                  n_latents: int = 4, dt: float = 0.01, trial_duration: float = 1.0,
                  frequencies=None, decay_time: float = 1.0, max_rate: float = 50.0,
                  baseline_rate: float = 5.0, noise: float = 0.02,
                  random_state=None) -> Recording:
    """Simulate a center-out reaching session with rotational population dynamics.

    Poisson units are driven by a low-dimensional latent state that rotates, as in
    motor cortex during reaching (Churchland et al. 2012, *Nature* 487:51, "jPCA").
    Everything that generated the data is kept in ``rec.meta["ground_truth"]``.

    **Latent dynamics.** The latent state ``x`` (``n_latents`` dimensions, in pairs)
    evolves in steps of ``dt`` as ``x[k+1] = A x[k] + noise * eps[k]`` with
    ``eps ~ N(0, I)`` and the block-rotation matrix ``A = exp(-dt / decay_time) *
    blockdiag(R(2 pi f_1 dt), ..., R(2 pi f_m dt))``, where ``R(phi)`` rotates a plane by
    ``phi``: the pair ``(x[2j], x[2j+1])`` turns at ``frequencies[j]`` Hz, so ``A`` has
    the complex eigenvalues ``exp(-dt / decay_time) * exp(+-2 pi i f_j dt)``. The state
    starts each trial from a direction-dependent initial condition
    ``x[0] = M [cos(theta), sin(theta)] + noise * eps``, where ``M`` maps the unit
    circle onto a circle of radius ``1 / sqrt(n_latents / 2)`` in each plane (a random
    rotation, or reflection, per plane), so ``|x[0]| = 1`` up to the noise and every
    plane carries the same share of it. This gives every unit cosine tuning to the
    reach direction ``theta``, with a preferred direction that rotates over the trial.

    **Trial structure.** Trials follow each other in one continuous session, with a
    rest of 0.3-0.7 s (uniform) before each trial and after the last. A trial starts at
    ``start_time``; the go cue comes 0.4-0.6 s later (uniform); movement starts
    ``0.2-0.4`` s after the go cue (the reaction time, uniform). The latent dynamics run
    from ``movement_onset - 0.25 * trial_duration`` to ``movement_onset + 0.75 *
    trial_duration`` (``trial_duration / dt`` steps; neural activity leads movement),
    and the trial stops when they end (``stop_time``; ``start_time`` is moved earlier
    if the dynamics would start before it). **Outside these windows the latents are
    exactly 0** (rest), so every unit fires at its baseline rate between trials. All
    event times lie on the simulation grid ``k * dt``.

    **Rates and spikes.** Unit ``i`` fires at
    ``rate_i(t) = min(b_i * exp(C[i] @ x(t)), max_rate)`` where ``b_i`` (the baseline,
    log-uniform within a factor ``e**0.5`` of ``baseline_rate``, capped at
    ``max_rate``) is the rate at rest and ``C[i]`` has norm ``log(max_rate / b_i)``, so
    the rate reaches ``max_rate`` only when ``|x| = 1`` points along ``C[i]``; the log
    rate is linear in the latents. The rate is constant within each step
    ``[k dt, (k + 1) dt)``; spike counts are Poisson per step and spike times uniform
    within the step (an exact inhomogeneous Poisson process for that rate), drawn for
    all units at once.

    **Hand velocity.** Each reach is a straight minimum-jerk movement of
    ``REACH_DISTANCE`` (0.1 m) along ``theta`` lasting ``0.5 * trial_duration`` from
    ``movement_onset``: speed ``30 u**2 (1 - u)**2 * D / T`` for ``u`` in ``[0, 1]`` (a
    bell-shaped profile), zero otherwise.

    Parameters
    ----------
    n_units : int, default=100
        Number of units (>= 1).
    n_trials : int, default=200
        Number of trials (>= n_conditions); conditions are balanced (each gets
        ``n_trials // n_conditions`` or one more) and shuffled.
    n_conditions : int, default=8
        Number of reach directions (>= 2), evenly spaced: ``theta_c = 2 pi c / n_conditions``.
    n_latents : int, default=4
        Latent dimensionality; even and >= 2 (the latents rotate in pairs).
    dt : float, default=0.01
        Simulation step in seconds (> 0, < trial_duration): the sampling interval of
        the signals and the step of the dynamics.
    trial_duration : float, default=1.0
        Length in seconds of the latent-dynamics window around movement onset.
    frequencies : array-like of shape (n_latents // 2,), default=None
        Rotation frequency of each latent pair in Hz (> 0 and below the Nyquist
        frequency ``1 / (2 dt)``); ``np.linspace(1.0, 2.0, n_latents // 2)`` when None.
    decay_time : float, default=1.0
        Time constant in seconds of the decay of the latent state (> 0; ``np.inf``
        for pure rotation).
    max_rate : float, default=50.0
        Largest firing rate in Hz (> baseline_rate).
    baseline_rate : float, default=5.0
        Typical rate at rest in Hz (> 0).
    noise : float, default=0.02
        Standard deviation of the Gaussian innovation added to each latent at each
        step, and of the noise on the initial condition (>= 0).
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the same int gives an identical recording.

    Returns
    -------
    rec : Recording
        - ``rec.spikes``: ``n_units`` spike trains (unit ids ``0 .. n_units - 1``; the
          unit table has each unit's ``baseline_rate``).
        - ``rec.trials``: one row per trial with ``start_time``, ``stop_time``,
          ``condition`` (int), ``direction`` (radians), ``go_cue``, ``movement_onset``
          (seconds).
        - ``rec.signals["hand_velocity"]``: ``(time, channel)`` with channels
          ``["vx", "vy"]`` in m/s, and ``rec.signals["latents"]``: the true latent
          state, channels ``["x0", "x1", ...]``; both float32, sampled at ``k * dt``
          (the value at ``k * dt`` holds for the step ``[k dt, (k + 1) dt)``).
        - ``rec.meta``: ``identifier``, ``session_description``,
          ``session_start_time``, ``subject`` and ``ground_truth``, a JSON-serialisable
          dict: ``dynamics_matrix`` (A), ``frequencies``, ``decay_time``,
          ``eigenvalues`` (``[real, imag]`` pairs), ``loading_matrix`` (C, n_units x
          n_latents), ``baseline_rates`` (b), ``initial_condition_matrix`` (M),
          ``latent_window`` (seconds relative to movement onset), ``rate_model`` and
          the generating ``parameters``.

    Raises
    ------
    ParameterError
        When a parameter is out of range; the message names it.

    Examples
    --------
    >>> rec = make_reaching(n_units=20, n_trials=16, random_state=0)
    >>> rec.trials.groupby("condition").size().tolist()
    [2, 2, 2, 2, 2, 2, 2, 2]
    >>> rec.signals["hand_velocity"]["channel"].values.tolist()
    ['vx', 'vy']
    """
    check_scalar("n_units", n_units, numbers.Integral, _OWNER, 1, None)
    check_scalar("n_conditions", n_conditions, numbers.Integral, _OWNER, 2, None)
    check_scalar("n_trials", n_trials, numbers.Integral, _OWNER, 1, None)
    if n_trials < n_conditions:
        raise ParameterError(
            f"The 'n_trials' parameter of {_OWNER} must be >= n_conditions={n_conditions} "
            f"so that every condition has a trial. Got {n_trials!r} instead."
        )
    check_scalar("n_latents", n_latents, numbers.Integral, _OWNER, 2, None)
    if n_latents % 2:
        raise ParameterError(
            f"The 'n_latents' parameter of {_OWNER} must be an even int >= 2 (the latents "
            f"rotate in pairs). Got {n_latents!r} instead."
        )
    check_scalar("trial_duration", trial_duration, numbers.Real, _OWNER, 0, None, "neither")
    check_scalar("dt", dt, numbers.Real, _OWNER, 0, None, "neither")
    check_less("dt", dt, "trial_duration", trial_duration, _OWNER)
    check_scalar("decay_time", decay_time, numbers.Real, _OWNER, 0, None, "neither")
    check_scalar("baseline_rate", baseline_rate, numbers.Real, _OWNER, 0, None, "neither")
    check_scalar("max_rate", max_rate, numbers.Real, _OWNER, 0, None, "neither")
    if not np.isfinite(max_rate) or not max_rate > baseline_rate:
        raise ParameterError(
            f"The 'max_rate' parameter of {_OWNER} must be a finite float greater than "
            f"baseline_rate={baseline_rate!r}. Got {max_rate!r} instead."
        )
    check_scalar("noise", noise, numbers.Real, _OWNER, 0, None, "left")
    n_pairs = n_latents // 2
    freqs = _check_frequencies(frequencies, n_pairs, dt)
    rng = check_random_state(random_state, _OWNER)
    dt = float(dt)

    # ---- planted model
    rho = float(np.exp(-dt / decay_time))
    A = np.zeros((n_latents, n_latents))
    for j, f in enumerate(freqs):
        phi = 2 * np.pi * f * dt
        A[2 * j: 2 * j + 2, 2 * j: 2 * j + 2] = rho * np.array(
            [[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]]
        )
    # Initial-condition map: a random rotation (or reflection) per plane, scaled so
    # that every plane holds the same share 1 / n_pairs of |x[0]|^2 = 1 for every theta.
    alpha = rng.uniform(0, 2 * np.pi, n_pairs)
    flip = rng.choice([-1.0, 1.0], n_pairs)
    M = np.concatenate([
        np.array([[np.cos(a), -np.sin(a) * s], [np.sin(a), np.cos(a) * s]])
        for a, s in zip(alpha, flip)
    ]) / np.sqrt(n_pairs)
    baselines = draw_baselines(n_units, baseline_rate, rng, cap=max_rate)
    C = rng.normal(size=(n_units, n_latents))
    C *= (np.log(max_rate / baselines) / np.linalg.norm(C, axis=1))[:, None]

    # ---- trial layout on the step grid
    condition = rng.permutation(np.arange(n_trials) % n_conditions).astype(np.int64)
    direction = 2 * np.pi * condition / n_conditions
    steps = _steps(dt)
    n_win = max(1, steps(trial_duration))
    n_pre = steps(0.25 * trial_duration)
    n_move = min(max(1, steps(0.5 * trial_duration)), n_win - n_pre)
    delay = steps(rng.uniform(0.4, 0.6, n_trials))
    rt = steps(rng.uniform(0.2, 0.4, n_trials))
    rest = steps(rng.uniform(0.3, 0.7, n_trials + 1))
    move_rel = delay + rt                      # movement onset after the nominal start
    win_rel = move_rel - n_pre                 # dynamics start
    first_rel = np.minimum(0, win_rel)         # trial start (earlier if dynamics lead it)
    stop_rel = win_rel + n_win
    length = stop_rel - first_rel
    start = np.cumsum(rest[:-1]) + np.concatenate([[0], np.cumsum(length)[:-1]])
    offset = start - first_rel                 # absolute index of the nominal start
    n_steps = int(start[-1] + length[-1] + rest[-1])

    # ---- latents: zero at rest, rotating within each trial's window
    innov = noise * rng.normal(size=(n_trials, n_win, n_latents))
    z = np.empty((n_trials, n_win, n_latents))
    z[:, 0] = np.stack([np.cos(direction), np.sin(direction)], 1) @ M.T + innov[:, 0]
    for k in range(1, n_win):
        z[:, k] = z[:, k - 1] @ A.T + innov[:, k]
    latents = np.zeros((n_steps, n_latents))
    win_idx = (offset + win_rel)[:, None] + np.arange(n_win)
    latents[win_idx] = z

    # ---- hand velocity: minimum-jerk reach from movement onset
    u = np.arange(n_move) / n_move
    speed = REACH_DISTANCE / (n_move * dt) * 30 * u**2 * (1 - u) ** 2
    velocity = np.zeros((n_steps, 2))
    move_idx = (offset + move_rel)[:, None] + np.arange(n_move)
    velocity[move_idx] = speed[None, :, None] * np.stack(
        [np.cos(direction), np.sin(direction)], 1
    )[:, None, :]

    # ---- spikes
    t = np.arange(n_steps) * dt
    rates = np.minimum(baselines * np.exp(latents @ C.T), max_rate)
    spikes = spikes_from_segments(t, dt, rates, rng)
    spikes.units = units_table(baselines)

    trials = pd.DataFrame({
        "start_time": t[start],
        "stop_time": t[offset + stop_rel],
        "condition": condition,
        "direction": direction,
        "go_cue": t[offset + delay],
        "movement_onset": t[offset + move_rel],
    })
    signals = {
        "hand_velocity": make_signal(
            velocity.astype(np.float32), t, rate=1 / dt, channels=["vx", "vy"],
            name="hand_velocity", unit="m/s",
            description="Hand velocity of a straight minimum-jerk reach (synthetic).",
        ),
        "latents": make_signal(
            latents.astype(np.float32), t, rate=1 / dt,
            channels=[f"x{i}" for i in range(n_latents)], name="latents", unit="a.u.",
            description="True latent state driving the units (0 at rest between trials).",
        ),
    }
    eig = np.linalg.eigvals(A)
    eig = eig[np.lexsort((-eig.imag, np.abs(np.angle(eig))))]
    ground_truth = {
        "generator": _OWNER,
        "parameters": {
            "n_units": int(n_units), "n_trials": int(n_trials),
            "n_conditions": int(n_conditions), "n_latents": int(n_latents), "dt": dt,
            "trial_duration": float(trial_duration), "frequencies": freqs.tolist(),
            "decay_time": float(decay_time), "max_rate": float(max_rate),
            "baseline_rate": float(baseline_rate), "noise": float(noise),
            "random_state": random_state if isinstance(random_state, numbers.Integral)
            else None,
        },
        "rate_model": "rate_i(t) = min(b_i * exp(C[i] @ x(t)), max_rate); "
                      "x[k+1] = A x[k] + noise * N(0, I); "
                      "x[0] = M [cos(direction), sin(direction)] + noise * N(0, I)",
        "dynamics_matrix": A.tolist(),
        "frequencies": freqs.tolist(),
        "decay_time": float(decay_time),
        "eigenvalues": [[float(e.real), float(e.imag)] for e in eig],
        "loading_matrix": C.tolist(),
        "baseline_rates": baselines.tolist(),
        "initial_condition_matrix": M.tolist(),
        "max_rate": float(max_rate),
        "noise": float(noise),
        "latent_window": [float(-n_pre * dt), float((n_win - n_pre) * dt)],
        "movement_duration": float(n_move * dt),
        "reach_distance": REACH_DISTANCE,
        "condition_directions": (2 * np.pi * np.arange(n_conditions) / n_conditions).tolist(),
    }
    token = f"{int(rng.integers(2**32)):08x}"
    return Recording.from_arrays(
        spike_times=spikes,
        trials=trials,
        signals=signals,
        identifier=f"synthetic-reaching-{token}",
        session_description=(
            f"Synthetic center-out reaching session ({n_conditions} directions, "
            f"{n_trials} trials, {n_units} Poisson units driven by {n_latents} "
            "rotational latents), generated by neuroml.datasets.make_reaching."
        ),
        session_start_time=SESSION_START,
        subject={"subject_id": "synthetic-reacher", "description": "simulated subject"},
        ground_truth=ground_truth,
    )


def _steps(dt: float):
    """Convert seconds to a whole number of simulation steps (rounded)."""
    def steps(seconds):
        return np.rint(np.asarray(seconds) / dt).astype(np.int64)
    return steps


def _check_frequencies(frequencies, n_pairs: int, dt: float) -> np.ndarray:
    if frequencies is None:
        freqs = np.linspace(1.0, 2.0, n_pairs)
    else:
        check_param("frequencies", frequencies, [None, "array-like"], _OWNER)
        try:
            freqs = np.asarray(frequencies, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            freqs = None
        if freqs is None or freqs.size != n_pairs:
            raise ParameterError(
                f"The 'frequencies' parameter of {_OWNER} must hold n_latents // 2 = "
                f"{n_pairs} numbers (one per rotating pair). Got {frequencies!r} instead."
            )
    nyquist = 1 / (2 * dt)
    if not np.all(np.isfinite(freqs) & (freqs > 0) & (freqs < nyquist)):
        raise ParameterError(
            f"The 'frequencies' parameter of {_OWNER} must be in the range (0, "
            f"{nyquist:g}) Hz (the Nyquist frequency 1 / (2 dt)). Got {freqs.tolist()!r} "
            "instead."
        )
    return freqs
