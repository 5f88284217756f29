"""The RL figures render headless, draw what they should, and leave pyplot alone.

Set ``NEUROML_FIG_DIR=/some/folder`` to keep one PNG of each figure there for a visual
check.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neuroml.errors import ParameterError  # noqa: E402
from neuroml.plotting.rl import (  # noqa: E402
    plot_choice_probability,
    plot_parameter_recovery,
    plot_reversal_points,
    plot_reward_distribution,
    plot_rpe_heatmap,
    plot_rpe_response,
)
from neuroml.rl.distributional import expectiles  # noqa: E402
from neuroml.rl.reversal import reversal_correlation, reversal_point_analysis  # noqa: E402
from neuroml.rl.td import TDModel  # noqa: E402

MAGS = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])
PROBS = np.array([0.066, 0.091, 0.149, 0.155, 0.312, 0.151, 0.077]) / 1.001


@pytest.fixture(autouse=True)
def pyplot_untouched():
    """No plotting function may create, close or switch pyplot figures."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def render(ax, tmp_path: Path, name: str) -> None:
    """Save to PNG (and to $NEUROML_FIG_DIR) and check the image is not blank."""
    fig = ax if isinstance(ax, Figure) else ax.figure
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=80)
    if os.environ.get("NEUROML_FIG_DIR"):
        out = Path(os.environ["NEUROML_FIG_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=110)
    img = mpimg.imread(path)[..., :3]
    non_white = np.mean(np.any(img < 0.95, axis=-1))
    assert 0.01 < non_white < 0.9, non_white


def test_rpe_heatmap_shows_the_rpe_moving_to_the_cue(tmp_path):
    cue = np.zeros((40, 12))
    cue[:, 2] = 1
    reward = np.zeros((40, 12))
    reward[:, 9] = 1
    model = TDModel(alpha=0.5, gamma=1.0, device="cpu").fit(cue, reward)
    ax = plot_rpe_heatmap(model, events={"cue": 2, "reward": 9})
    assert isinstance(ax, Axes)
    img = ax.images[0].get_array()
    np.testing.assert_array_equal(img, model.rpe_.values)
    assert img[0, 9] == pytest.approx(1.0) and img[-1, 2] == pytest.approx(1.0, abs=1e-3)
    norm = ax.images[0].norm
    assert norm.vmin == -norm.vmax == pytest.approx(-1.0)  # centred at 0
    assert [t.get_text() for t in ax.texts] == ["cue", "reward"]
    assert ax.get_xlabel() == "Time bin" and ax.get_ylabel() == "Trial"
    assert len(ax.figure.axes) == 2  # the colorbar
    render(ax, tmp_path, "rpe_heatmap")
    # float time coordinates are seconds; a given Axes is drawn into, no colorbar
    da = model.rpe_.assign_coords(time=np.arange(12) * 0.1)
    own = Figure().add_subplot()
    assert plot_rpe_heatmap(da, ax=own, colorbar=False) is own
    assert own.get_xlabel() == "Time (s)" and len(own.figure.axes) == 1
    with pytest.raises(ParameterError, match=r"\(trial, time\)"):
        plot_rpe_heatmap(np.zeros(5))


def _trials(n=120, seed=0):
    rng = np.random.default_rng(seed)
    choice = rng.integers(0, 2, n)
    choice[[3, 40]] = -1
    reward = np.where(choice >= 0, rng.random(n) < 0.6, np.nan).astype(float)
    p1 = np.where((np.arange(n) // 40) % 2 == 0, 0.2, 0.8)
    return pd.DataFrame({"choice": choice, "reward": reward, "p_reward_0": 1 - p1,
                         "p_reward_1": p1}), np.column_stack([1 - p1 * 0.9, p1 * 0.9])


def test_choice_probability_draws_model_choices_rewards_and_blocks(tmp_path):
    trials, proba = _trials()
    ax = plot_choice_probability(trials, proba=proba, labels=("left", "right"))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), proba[:, 1])
    # one tick per answered trial: rewarded (long) and unrewarded (short), above and below
    ticks = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = [s for c in ticks for s in c.get_segments()]
    answered = trials["choice"].to_numpy() >= 0
    assert len(segments) == answered.sum()
    above = [s for s in segments if s[0, 1] > 1]
    assert len(above) == int((trials["choice"] == 1).sum())
    long_ = [s for s in segments if abs(s[1, 1] - s[0, 1]) > 0.1]
    assert len(long_) == int(np.nansum(trials["reward"]))
    # block changes at trials 40 and 80: faint vertical lines at 39.5 and 79.5
    vlines = sorted(line.get_xdata()[0] for line in ax.lines
                    if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1])
    assert vlines == [39.5, 79.5]
    labels = ax.get_legend_handles_labels()[1]
    assert "model P(right)" in labels and "no response" in labels
    assert ax.get_ylabel() == "P(right)" and "left below" in ax.get_title()
    render(ax, tmp_path, "choice_probability")
    # p_<option> columns instead of proba; without reward probabilities no block lines
    t2 = trials.drop(columns=["p_reward_0", "p_reward_1"]).assign(p_1=proba[:, 1])
    own = Figure().add_subplot()
    assert plot_choice_probability(t2, ax=own, smooth=None) is own
    np.testing.assert_allclose(own.lines[0].get_ydata(), proba[:, 1])
    assert not any("share" in lab for lab in own.get_legend_handles_labels()[1])
    with pytest.raises(ParameterError, match="'choice' and 'reward'"):
        plot_choice_probability(pd.DataFrame({"x": [1]}))
    with pytest.raises(ParameterError, match="one row per trial"):
        plot_choice_probability(trials, proba=proba[:10])


def _reversal_result(seed=0):
    """A simulated distributional population: each cell reverses at its expectile."""
    rng = np.random.default_rng(seed)
    taus = np.linspace(0.1, 0.9, 15)
    rev = expectiles(MAGS, PROBS, taus)
    resp, mag, cell = [], [], []
    for i, (t, e) in enumerate(zip(taus, rev)):
        m = rng.choice(MAGS, 300, p=PROBS)
        d = m - e
        resp.append(np.where(d > 0, t, 1 - t) * d + 0.5 * rng.normal(size=m.size))
        mag.append(m)
        cell += [f"c{i}"] * m.size
    return reversal_point_analysis(np.concatenate(resp), np.concatenate(mag), cell,
                                   n_splits=3, random_state=0)


def test_reversal_points_scatter_with_r_of_reversal_correlation(tmp_path):
    res = _reversal_result()
    corr = reversal_correlation(res)
    ax = plot_reversal_points(res, split=1, distribution=(MAGS, PROBS))
    part = res.xs(1, level="split")
    ok = np.isfinite(part["tau"]) & (part["tau"] >= 0) & (part["tau"] <= 1)
    np.testing.assert_allclose(ax.collections[0].get_offsets(),
                               part.loc[ok, ["tau", "reversal_point"]].to_numpy())
    assert ax.get_title() == f"r = {corr.loc[1, 'r']:.2f}, p = {corr.loc[1, 'p_value']:.2g}"
    assert corr.loc[1, "r"] > 0.8  # planted: reversal points are the expectiles
    # the expectile curve is exact
    curve = ax.lines[1]
    np.testing.assert_allclose(curve.get_ydata(), expectiles(MAGS, PROBS, curve.get_xdata()))
    assert any("mean r over 3 splits" in lab for lab in ax.get_legend_handles_labels()[1])
    render(ax, tmp_path, "reversal_points")
    with pytest.raises(ParameterError, match="split"):
        plot_reversal_points(res, split=7)
    with pytest.raises(ParameterError, match="reversal_point_analysis"):
        plot_reversal_points(pd.DataFrame({"tau": [0.5]}))
    # two cells have no correlation: they are drawn, and r is NaN
    two = res.xs(1, level="split").iloc[:2]
    ax = plot_reversal_points(two)
    assert ax.get_title() == "r = nan, p = nan" and len(ax.collections[0].get_offsets()) == 2


def test_reward_distribution_smooths_both_with_one_kernel(tmp_path):
    rng = np.random.default_rng(0)
    samples = rng.choice(MAGS, 400, p=PROBS) + rng.normal(0, 0.2, 400)
    ax = plot_reward_distribution(samples, values=MAGS, probabilities=PROBS, bandwidth=1.0)
    decoded, true = ax.lines[0], ax.lines[1]
    x = decoded.get_xdata()
    # both are densities: each integrates to ~1 over the grid
    assert np.trapezoid(decoded.get_ydata(), x) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(true.get_ydata(), x) == pytest.approx(1.0, abs=1e-3)
    # the true curve is the probability-weighted Gaussian mixture at the atoms
    from scipy.stats import norm

    expected = (PROBS[None] * norm.pdf(x[:, None], MAGS[None], 1.0)).sum(1)
    np.testing.assert_allclose(true.get_ydata(), expected, rtol=1e-10)
    np.testing.assert_allclose(ax.lines[2].get_xdata(), MAGS)
    render(ax, tmp_path, "reward_distribution")
    own = Figure().add_subplot()
    assert plot_reward_distribution(samples, ax=own) is own and len(own.lines) == 1
    with pytest.raises(ParameterError, match="one entry per value"):
        plot_reward_distribution(samples, values=MAGS, probabilities=[0.5, 0.5])
    with pytest.raises(ParameterError, match="finite"):
        plot_reward_distribution([1.0, np.nan])


def test_parameter_recovery_panels_identity_and_r(tmp_path):
    rng = np.random.default_rng(0)
    true = pd.DataFrame({"alpha": rng.uniform(0.05, 0.95, 50), "beta": rng.uniform(1, 10, 50)})
    fitted = pd.DataFrame({"alpha": true["alpha"] + rng.normal(0, 0.05, 50),
                           "beta": true["beta"] * np.exp(rng.normal(0, 0.1, 50))})
    axes = plot_parameter_recovery(true, fitted)
    assert isinstance(axes, np.ndarray) and axes.shape == (2,)
    assert all(isinstance(a, Axes) for a in axes) and axes[0].figure is axes[1].figure
    r_alpha = np.corrcoef(true["alpha"], fitted["alpha"])[0, 1]
    r_beta = np.corrcoef(np.log(true["beta"]), np.log(fitted["beta"]))[0, 1]
    assert axes[0].get_title() == f"alpha: r = {r_alpha:.2f}, n = 50"
    assert axes[1].get_title() == f"beta: r (log) = {r_beta:.2f}, n = 50"
    assert axes[1].get_xscale() == "log" and axes[0].get_xscale() == "linear"
    line = axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), line.get_ydata())  # identity
    np.testing.assert_allclose(axes[0].collections[0].get_offsets(),
                               np.column_stack([true["alpha"], fitted["alpha"]]))
    render(axes[0], tmp_path, "parameter_recovery")
    # a shuffled index is aligned by label; given axes are used
    fig = Figure()
    own = fig.subplots(1, 1, squeeze=False)[0]
    out = plot_parameter_recovery(true, fitted.sample(frac=1, random_state=0),
                                  parameters=["alpha"], axes=own)
    assert out[0] is own[0] and out[0].get_title() == f"alpha: r = {r_alpha:.2f}, n = 50"
    with pytest.raises(ParameterError, match="not columns of both"):
        plot_parameter_recovery(true, fitted, parameters=["gamma"])
    with pytest.raises(ParameterError, match="needs 2 Axes"):
        plot_parameter_recovery(true, fitted, axes=own)


def test_rpe_response_groups_trials_by_rpe_quantile(tmp_path):
    rng = np.random.default_rng(0)
    rpe = rng.normal(size=90)
    rpe[5] = np.nan
    t = np.arange(-0.5, 1.0, 0.1) + 0.05
    y = np.nan_to_num(rpe)[:, None] * (t > 0) + 0.1 * rng.normal(size=(90, t.size))
    da = xr.DataArray(y[:, :, None], dims=("trial", "time", "channel"),
                      coords={"time": t, "rpe": ("trial", rpe)}, name="dF/F",
                      attrs={"align_to": "outcome"})
    ax = plot_rpe_response(da, "rpe", n_groups=3)
    assert len(ax.lines) == 4  # three groups and the event line
    edges = np.nanquantile(rpe, [0, 1 / 3, 2 / 3, 1])
    ok = np.isfinite(rpe)
    low = ok & (rpe < edges[1])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), y[low].mean(0))
    means = [line.get_ydata()[t > 0].mean() for line in ax.lines[:3]]
    assert means[0] < means[1] < means[2]
    assert ax.get_xlabel() == "Time from outcome (s)" and ax.get_ylabel() == "dF/F"
    assert "(30 trials)" in ax.get_legend_handles_labels()[1][0]
    render(ax, tmp_path, "rpe_response")
    with pytest.raises(ParameterError, match="one value per trial"):
        plot_rpe_response(da, rpe[:10])
