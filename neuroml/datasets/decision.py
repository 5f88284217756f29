"""A two-choice task whose stimulus and choice become decodable at a planted time."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..errors import ParameterError
from ..io.recording import Recording
from ._common import (
    SESSION_START,
    check_less,
    check_random_state,
    check_scalar,
    draw_baselines,
    spikes_from_segments,
    units_table,
)

__all__ = ["make_decision", "ideal_accuracy"]

_OWNER = "make_decision"

SNR_DEFINITION = (
    "snr is the discriminability d' of the two stimuli (at a fixed choice) from the spike "
    "counts of all units in the coding window [stim_on + signal_onset, stim_on + "
    "trial_duration) of length T: the Mahalanobis distance between the two class-mean "
    "count vectors under the Poisson noise covariance diag(b_i T) at the baseline rates "
    "b_i. Equivalently, after dividing each unit's count by its baseline s.d. "
    "sqrt(b_i T), the class means are snr apart along the unit coding direction u and the "
    "noise s.d. of the projection onto u is 1. choice_snr is the same for the two choices "
    "along v. With choice_snr = 0 an ideal observer decodes the stimulus with accuracy "
    "Phi(snr / 2) (Phi: standard normal CDF); in a sub-window of length w the d' is "
    "snr * sqrt(w / T)."
)


def make_decision(n_units: int = 80, n_trials: int = 200, *, signal_onset: float = 0.3,
                  snr: float = 1.0, choice_snr: float | None = None,
                  choice_accuracy: float = 0.8, trial_duration: float = 1.0,
                  baseline_rate: float = 5.0, random_state=None) -> Recording:
    """Simulate a two-choice task with planted stimulus and choice codes.

    On each trial a binary stimulus is shown and the subject makes a binary choice
    that matches the stimulus on a fraction ``choice_accuracy`` of the trials. Poisson
    units fire at their baseline rate until ``signal_onset`` seconds after stimulus
    onset; from then until the end of the trial the population rate moves along two
    fixed coding directions, one signed by the stimulus and one by the choice. Before
    ``signal_onset`` the spikes carry **no** information about stimulus or choice (the
    rates are exactly the baselines, identical on every trial). Everything planted is
    kept in ``rec.meta["ground_truth"]``.

    **Rates.** With baseline rates ``b_i`` (log-uniform within a factor ``e**0.5`` of
    ``baseline_rate``), unit coding directions ``u`` (stimulus) and ``v`` (choice;
    random, orthogonalised against ``u``), and ``T = trial_duration - signal_onset``,
    unit ``i`` fires in the coding window at::

        rate_i = b_i + sqrt(b_i / T) * (snr * (stimulus - 1/2) * u_i
                                        + choice_snr * (choice - 1/2) * v_i)

    and at ``b_i`` at every other time (before ``signal_onset``, between trials). Rates
    are constant within each piece, so spikes are drawn exactly (Poisson count, uniform
    times) for all units at once.

    **Signal-to-noise ratio.** ``snr`` is the discriminability *d'* of the two
    stimuli (at a fixed choice) from the spike counts of all units in the coding window
    ``[stim_on + signal_onset, stim_on + trial_duration)``: the Mahalanobis distance
    between the two class-mean count vectors under the Poisson noise covariance
    ``diag(b_i T)``. Equivalently, after dividing each unit's count by its baseline
    s.d. ``sqrt(b_i T)``, the class means are ``snr`` apart along ``u`` and the noise
    s.d. of the projection onto ``u`` is 1. ``choice_snr`` is the same for the choices
    along ``v``. With ``choice_snr = 0`` an ideal observer of the window's counts
    decodes the stimulus with accuracy ``Phi(snr / 2)`` (``Phi`` the standard normal
    CDF); in a sub-window of length ``w`` the *d'* is ``snr * sqrt(w / T)``. (Both hold
    in the Gaussian approximation of the Poisson counts.) When both codes are on, the
    choice also informs about the stimulus; :func:`ideal_accuracy` gives the
    ideal-observer accuracy then, stored in ``ground_truth["ideal_accuracy"]``.

    **Trial structure.** Trials follow each other in one continuous session, with a
    rest of 0.3-0.7 s (uniform) before each trial and after the last. The stimulus
    comes 0.3-0.5 s after ``start_time`` (``stim_on``); the trial stops at ``stim_on +
    trial_duration``; the response comes at ``stim_on + signal_onset + U(0.5, 1) *
    (trial_duration - signal_onset)``. Stimuli are balanced (``n_trials // 2`` or one
    more of each) and shuffled; exactly ``round(choice_accuracy * n_trials)`` randomly
    chosen trials are correct. Times are rounded to 1 ms.

    Parameters
    ----------
    n_units : int, default=80
        Number of units (>= 2).
    n_trials : int, default=200
        Number of trials (>= 2).
    signal_onset : float, default=0.3
        Seconds after stimulus onset from which stimulus and choice are linearly
        decodable; in ``[0, trial_duration)``.
    snr : float, default=1.0
        Stimulus discriminability *d'* in the coding window (>= 0), defined above.
    choice_snr : float or None, default=None
        Choice discriminability *d'* (>= 0); equal to ``snr`` when None.
    choice_accuracy : float, default=0.8
        Fraction of trials on which ``choice == stimulus``, in ``[0, 1]``.
    trial_duration : float, default=1.0
        Seconds from stimulus onset to the end of the trial (> 0).
    baseline_rate : float, default=5.0
        Typical baseline rate in Hz (> 0).
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the same int gives an identical recording.

    Returns
    -------
    rec : Recording
        - ``rec.spikes``: ``n_units`` spike trains (unit table: ``baseline_rate``).
        - ``rec.trials``: ``start_time``, ``stop_time``, ``stimulus`` (0/1),
          ``choice`` (0/1), ``correct`` (bool), ``stim_on``, ``response_time``
          (seconds).
        - ``rec.meta["ground_truth"]``: a JSON-serialisable dict with
          ``signal_onset``, ``snr``, ``choice_snr``, ``coding_window`` (seconds after
          ``stim_on``), ``stimulus_direction`` (u), ``choice_direction`` (v),
          ``baseline_rates`` (b), ``stimulus_rate_difference`` and
          ``choice_rate_difference`` (Hz, rate for 1 minus rate for 0 in the window),
          ``choice_accuracy`` (realised fraction), ``ideal_accuracy`` (``{"stimulus",
          "choice"}``), ``snr_definition`` and the generating ``parameters``.

    Raises
    ------
    ParameterError
        When a parameter is out of range (the message names it), or when ``snr`` /
        ``choice_snr`` are so large for the baseline rates that a rate would be negative.

    Examples
    --------
    >>> rec = make_decision(n_units=10, n_trials=50, random_state=0)
    >>> float(rec.trials["correct"].mean())
    0.8
    >>> rec.meta["ground_truth"]["ideal_accuracy"]["stimulus"] > 0.69
    True
    """
    check_scalar("n_units", n_units, numbers.Integral, _OWNER, 2, None)
    check_scalar("n_trials", n_trials, numbers.Integral, _OWNER, 2, None)
    check_scalar("trial_duration", trial_duration, numbers.Real, _OWNER, 0, None, "neither")
    if not np.isfinite(trial_duration):
        raise ParameterError(
            f"The 'trial_duration' parameter of {_OWNER} must be finite. "
            f"Got {trial_duration!r} instead."
        )
    check_scalar("signal_onset", signal_onset, numbers.Real, _OWNER, 0, None, "left")
    check_less("signal_onset", signal_onset, "trial_duration", trial_duration, _OWNER)
    check_scalar("snr", snr, numbers.Real, _OWNER, 0, None, "left")
    if choice_snr is None:
        choice_snr = snr
    check_scalar("choice_snr", choice_snr, numbers.Real, _OWNER, 0, None, "left")
    for name, value in (("snr", snr), ("choice_snr", choice_snr)):
        if not np.isfinite(value):
            raise ParameterError(
                f"The '{name}' parameter of {_OWNER} must be finite. Got {value!r} instead."
            )
    check_scalar("choice_accuracy", choice_accuracy, numbers.Real, _OWNER, 0, 1)
    check_scalar("baseline_rate", baseline_rate, numbers.Real, _OWNER, 0, None, "neither")
    rng = check_random_state(random_state, _OWNER)
    snr, choice_snr = float(snr), float(choice_snr)
    coding = float(trial_duration) - float(signal_onset)

    # ---- planted codes
    baselines = draw_baselines(n_units, baseline_rate, rng)
    u = rng.normal(size=n_units)
    u /= np.linalg.norm(u)
    v = rng.normal(size=n_units)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    scale = np.sqrt(baselines / coding)
    d_stim = scale * snr * u          # rate(stimulus=1) - rate(stimulus=0), Hz
    d_choice = scale * choice_snr * v
    worst = baselines - 0.5 * (np.abs(d_stim) + np.abs(d_choice))
    if np.any(worst < 0):
        i = int(np.argmin(worst))
        raise ParameterError(
            f"The 'snr'={snr!r} / 'choice_snr'={choice_snr!r} parameters of {_OWNER} are "
            f"too large for the baseline rates: unit {i} (baseline {baselines[i]:.3g} Hz) "
            "would need a negative rate. Lower snr or choice_snr, or raise baseline_rate "
            "or the coding window trial_duration - signal_onset."
        )

    # ---- behaviour
    stimulus = rng.permutation(np.arange(n_trials) % 2).astype(np.int64)
    correct = np.zeros(n_trials, dtype=bool)
    n_correct = int(round(float(choice_accuracy) * n_trials))
    correct[rng.permutation(n_trials)[:n_correct]] = True
    choice = np.where(correct, stimulus, 1 - stimulus)

    # ---- trial layout (continuous time, ms resolution)
    def ms(x):
        return np.rint(np.asarray(x, dtype=np.float64) * 1000) / 1000

    rest = ms(rng.uniform(0.3, 0.7, n_trials + 1))
    fixation = ms(rng.uniform(0.3, 0.5, n_trials))
    rt_frac = rng.uniform(0.5, 1.0, n_trials)
    length = fixation + float(trial_duration)
    start = ms(np.cumsum(rest[:-1]) + np.concatenate([[0.0], np.cumsum(length)[:-1]]))
    stim_on = ms(start + fixation)
    stop = ms(stim_on + trial_duration)
    code_on = stim_on + float(signal_onset)
    response = ms(code_on + rt_frac * coding)
    end = float(stop[-1] + rest[-1])

    # ---- spikes: baseline pieces alternate with coded pieces
    bounds = np.concatenate([[0.0], np.column_stack([code_on, stop]).ravel(), [end]])
    seg_start, seg_len = bounds[:-1], np.diff(bounds)
    rates = np.tile(baselines, (2 * n_trials + 1, 1))
    rates[1::2] += (stimulus - 0.5)[:, None] * d_stim + (choice - 0.5)[:, None] * d_choice
    spikes = spikes_from_segments(seg_start, seg_len, rates, rng)
    spikes.units = units_table(baselines)

    trials = pd.DataFrame({
        "start_time": start,
        "stop_time": stop,
        "stimulus": stimulus,
        "choice": choice.astype(np.int64),
        "correct": correct,
        "stim_on": stim_on,
        "response_time": response,
    })
    agreement = float(correct.mean())
    ground_truth = {
        "generator": _OWNER,
        "parameters": {
            "n_units": int(n_units), "n_trials": int(n_trials),
            "signal_onset": float(signal_onset), "snr": snr, "choice_snr": choice_snr,
            "choice_accuracy": float(choice_accuracy),
            "trial_duration": float(trial_duration), "baseline_rate": float(baseline_rate),
            "random_state": random_state if isinstance(random_state, numbers.Integral)
            else None,
        },
        "rate_model": "rate_i = b_i + sqrt(b_i / T) * (snr * (stimulus - 1/2) * u_i + "
                      "choice_snr * (choice - 1/2) * v_i) in the coding window, b_i "
                      "elsewhere; T = trial_duration - signal_onset",
        "snr_definition": SNR_DEFINITION,
        "signal_onset": float(signal_onset),
        "snr": snr,
        "choice_snr": choice_snr,
        "coding_window": [float(signal_onset), float(trial_duration)],
        "stimulus_direction": u.tolist(),
        "choice_direction": v.tolist(),
        "baseline_rates": baselines.tolist(),
        "stimulus_rate_difference": d_stim.tolist(),
        "choice_rate_difference": d_choice.tolist(),
        "choice_accuracy": agreement,
        "ideal_accuracy": {
            "stimulus": ideal_accuracy(snr, choice_snr, agreement),
            "choice": ideal_accuracy(choice_snr, snr, agreement),
        },
    }
    token = f"{int(rng.integers(2**32)):08x}"
    return Recording.from_arrays(
        spike_times=spikes,
        trials=trials,
        identifier=f"synthetic-decision-{token}",
        session_description=(
            f"Synthetic two-choice session ({n_trials} trials, {n_units} Poisson units; "
            f"stimulus d'={snr:g} and choice d'={choice_snr:g} from {signal_onset:g} s "
            "after stimulus onset), generated by neuroml.datasets.make_decision."
        ),
        session_start_time=SESSION_START,
        subject={"subject_id": "synthetic-decider", "description": "simulated subject"},
        ground_truth=ground_truth,
    )


def ideal_accuracy(d_target: float, d_other: float, agreement: float) -> float:
    """Ideal-observer accuracy for one binary variable given two planted codes.

    The whitened counts projected on the two (orthogonal) coding directions are
    ``z_t ~ N(d_target * (y - 1/2), 1)`` and ``z_o ~ N(d_other * (y' - 1/2), 1)``,
    where the other variable ``y'`` equals the target ``y`` with probability
    ``agreement`` and both are balanced. The Bayes-optimal decision from
    ``(z_t, z_o)`` is correct with the probability returned here, computed by
    quadrature over ``z_o``. With ``d_other = 0`` it is ``Phi(d_target / 2)``; with
    ``d_target = 0`` it is ``a Phi(d_other / 2) + (1 - a) (1 - Phi(d_other / 2))`` for
    ``a = max(agreement, 1 - agreement)``.

    Parameters
    ----------
    d_target : float
        d' of the target variable's own code (>= 0).
    d_other : float
        d' of the other variable's code (>= 0).
    agreement : float
        Probability that the two variables are equal, in [0, 1].

    Returns
    -------
    accuracy : float
    """
    a = float(agreement)
    h = d_other / 2
    z = np.linspace(-h - 12.0, h + 12.0, 24001 + int(2000 * h))
    dz = z[1] - z[0]
    with np.errstate(divide="ignore"):
        log_a, log_1a = np.log(a), np.log1p(-a)
    near, far = -0.5 * (z - h) ** 2, -0.5 * (z + h) ** 2
    log_p1 = np.logaddexp(log_a + near, log_1a + far)   # log density of z_o given y = 1
    log_p0 = np.logaddexp(log_1a + near, log_a + far)   # ... given y = 0 (up to 1/sqrt(2 pi))
    g = log_p1 - log_p0
    p1 = np.exp(log_p1) / np.sqrt(2 * np.pi)
    if d_target > 0:
        p_correct = ndtr(d_target / 2 + g / d_target)
    else:
        p_correct = np.where(g > 0, 1.0, np.where(g < 0, 0.0, 0.5))
    return float(np.sum(p1 * p_correct) * dz)
