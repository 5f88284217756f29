"""Figures of neuroml.plotting.sequence: they render headless and draw the data they are given.

Numbers are checked against what the inputs say (the arrays, pandas group means,
scikit-learn's R^2, a fitted model's own predictions); the receptive-field grid is
drawn from the planted Gabor filters of ``make_visual_population`` and from a fitted
``ConvEncodingModel``. Set ``NEUROML_FIG_DIR=/some/folder`` to keep a PNG of each
figure there for a visual check.
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
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402

from neuroml.datasets.visual import make_visual_population  # noqa: E402
from neuroml.errors import ParameterError  # noqa: E402
from neuroml.nn.encoding import ConvEncodingModel  # noqa: E402
from neuroml.nn.parametric import ParametricRegressor  # noqa: E402
from neuroml.plotting.sequence import (  # noqa: E402
    plot_decoder_scores,
    plot_predicted_behavior,
    plot_receptive_fields,
    plot_tuning_curves,
)


@pytest.fixture(autouse=True)
def pyplot_untouched():
    """No plotting function may create, close or switch pyplot figures."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def render(fig: Figure, tmp_path: Path, name: str) -> None:
    """Save to PNG (and to $NEUROML_FIG_DIR); the image must not be blank."""
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=70)
    if os.environ.get("NEUROML_FIG_DIR"):
        out = Path(os.environ["NEUROML_FIG_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=110)
    img = mpimg.imread(path)[..., :3]
    assert 0.01 < np.mean(np.any(img < 0.95, axis=-1)) < 0.95


def predictions_continuous(gap: bool = True, scale: float = 1.0):
    """(decoder, time, channel) predictions with an 'observed' coordinate and a time gap."""
    rng = np.random.default_rng(0)
    t = np.arange(200) * 0.1
    if gap:
        t[100:] += 5.0  # a 5 s gap after the 100th bin
    truth = np.stack([np.sin(t), np.cos(2 * t)], 1) * scale
    pred = truth[None] + rng.normal(0, 0.3 * scale, (2, 200, 2))
    r2 = np.array([[r2_score(truth[:, j], pred[i, :, j]) for j in range(2)] for i in range(2)])
    return xr.DataArray(pred, dims=("decoder", "time", "channel"),
                        coords={"decoder": ["wiener", "rnn"], "time": t,
                                "channel": ["vx", "vy"], "observed": (("time", "channel"), truth),
                                "r2": (("decoder", "channel"), r2)},
                        attrs={"behavior": "hand_velocity", "unit": "m/s"})


# ---------------------------------------------------------------------- predicted behaviour
def test_predicted_behavior_draws_observed_and_each_decoder(tmp_path):
    da = predictions_continuous()
    axes = plot_predicted_behavior(da)
    assert axes.shape == (2,) and all(isinstance(a, Axes) for a in axes)
    for j, a in enumerate(axes):
        assert len(a.lines) == 3  # observed, wiener, rnn
        x, y = a.lines[0].get_xdata(), a.lines[0].get_ydata()
        # one NaN breaks the line at the gap; the rest is the data as given
        assert np.isnan(x).sum() == 1 and np.isnan(x[100])
        np.testing.assert_allclose(y[~np.isnan(y)], da["observed"].values[:, j])
        np.testing.assert_allclose(a.lines[2].get_ydata()[~np.isnan(x)], da.values[1, :, j])
        low, high = a.get_ylim()  # the observed trace is never cut
        assert low < np.nanmin(y) and high > np.nanmax(y)
        labels = [t.get_text() for t in a.get_legend().get_texts()]
        assert labels[0] == "observed"
        assert labels[1] == f"wiener (R\u00b2 {da['r2'].values[0, j]:.2f})"
    assert axes[0].get_ylabel() == "vx (m/s)" and axes[-1].get_xlabel() == "Time (s)"
    # predictions that shrink towards 0 (a common failure) do not shrink the axes
    shrunk = plot_predicted_behavior(da.copy(data=0.3 * da["observed"].values[None]
                                             .repeat(2, 0)))
    for j, a in enumerate(shrunk):
        assert a.get_ylim()[0] < da["observed"].values[:, j].min()
        assert a.get_ylim()[1] > da["observed"].values[:, j].max()
    assert "hand_velocity" in axes[0].get_title()
    render(axes[0].figure, tmp_path, "predicted_behavior")


def test_predicted_behavior_rescales_tiny_units_and_selects():
    da = predictions_continuous(gap=False, scale=2e-5)
    axes = plot_predicted_behavior(da, decoders=["rnn"], channels=["vy"],
                                   time_range=(2.0, 10.0))
    assert axes.shape == (1,)
    a = axes[0]
    assert a.get_ylabel() == "vy (\u00b5m/s)"
    keep = (da.time.values >= 2.0) & (da.time.values < 10.0)
    np.testing.assert_allclose(a.lines[0].get_ydata(), da["observed"].values[keep, 1] * 1e6)
    np.testing.assert_allclose(a.lines[1].get_ydata(), da.sel(decoder="rnn").values[keep, 1] * 1e6)
    # a given Axes is drawn into; observed can be passed instead of the coordinate
    own = Figure().add_subplot()
    plain = da.drop_vars(["observed", "r2"]).sel(decoder="rnn", channel="vx")
    out = plot_predicted_behavior(plain, observed=da["observed"].values[:, 0], ax=own)
    assert out[0] is own and len(own.lines) == 2


def test_predicted_behavior_trials_end_to_end(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(-0.2, 1.0, 0.05) + 0.025
    truth = rng.normal(size=(6, t.size, 1))
    pred = truth[None] + 0.5 * rng.normal(size=(3, 6, t.size, 1))
    da = xr.DataArray(pred, dims=("decoder", "trial", "time", "channel"),
                      coords={"decoder": ["wiener", "kalman", "rnn"], "trial": np.arange(6),
                              "time": t, "channel": ["speed"],
                              "observed": (("trial", "time", "channel"), truth)},
                      attrs={"align_to": "go_cue"})
    pred[2, 2, 5, 0] = 40.0  # one wild prediction is cut, the observed trace never
    da = da.copy(data=pred)
    (a,) = plot_predicted_behavior(da, trials=[1, 2, 3])
    y = a.lines[0].get_ydata()
    low, high = a.get_ylim()
    assert low < np.nanmin(y) and np.nanmax(y) < high < 40.0
    assert np.isnan(y).sum() == 2  # one break between consecutive trials
    np.testing.assert_allclose(y[~np.isnan(y)], truth[1:4, :, 0].ravel())
    assert len(a.lines) == 4 + 2 + 3  # observed, 3 decoders, 2 trial boundaries, 3 events
    assert a.get_xlabel() == "Time (s), trials 1\u20133 end to end (dashed: go_cue)"
    event_x = [line.get_xdata()[0] for line in a.lines[-3:]]
    np.testing.assert_allclose(np.diff(event_x), (t.size + 1) * 0.05)  # one per trial
    render(a.figure, tmp_path, "predicted_behavior_trials")


def test_predicted_behavior_errors():
    da = predictions_continuous()
    with pytest.raises(ParameterError, match="observed"):
        plot_predicted_behavior(da.drop_vars("observed"))
    with pytest.raises(ParameterError, match=r"dims \(\[decoder,\] \[trial,\] time"):
        plot_predicted_behavior(da.rename(time="t"))
    with pytest.raises(ParameterError, match="2 matplotlib Axes"):
        plot_predicted_behavior(da, ax=Figure().add_subplot())
    with pytest.raises(ParameterError, match="labels or positions along 'decoder'"):
        plot_predicted_behavior(da, decoders=["lstm"])
    with pytest.raises(ParameterError, match="time_range"):
        plot_predicted_behavior(da, time_range=(100, 200))


# ---------------------------------------------------------------------- scores
def test_decoder_scores_bars_points_and_floor(tmp_path):
    folds = np.array([[0.5, 0.6, 0.55], [-2.5, -4.0, -0.5], [0.7, 0.8, 0.75]])
    scores = xr.DataArray(folds, dims=("decoder", "fold"),
                          coords={"decoder": ["wiener", "kalman", "rnn"],
                                  "pooled": ("decoder", [0.56, -3.1, 0.76])})
    ax = plot_decoder_scores(scores)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.56, -1.0, 0.76])  # kalman cut at the floor
    points = ax.collections[0].get_offsets()
    assert len(points) == 9
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(np.maximum(folds, -1).ravel()))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["wiener\n0.56", "kalman\n-3.10",
                                                            "rnn\n0.76"]
    assert any(line.get_marker() == "v" for line in ax.lines)  # the cut bar is marked
    assert "cut at -1" in ax.get_ylabel()
    assert "all held-out bins" in ax.get_xlabel()
    render(ax.figure, tmp_path, "decoder_scores")
    # everything shown without a floor; a dict gives the means of its folds
    ax = plot_decoder_scores({"a": [0.1, 0.3], "b": -2.0}, floor=None)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], [0.2, -2.0])
    assert ax.get_ylim()[0] < -2.0 and "mean of the folds" in ax.get_xlabel()
    with pytest.raises(ParameterError, match="dims"):
        plot_decoder_scores(scores.rename(fold="split"))


# ---------------------------------------------------------------------- receptive fields
def test_receptive_fields_grid_of_planted_gabors(tmp_path):
    pop = make_visual_population(n_neurons=7, n_images=20, image_size=12, random_state=0)
    filters = pop.filters.assign_coords(cell_type=("neuron", pop.cell_type))
    axes = plot_receptive_fields(filters)
    assert axes.shape == (7,)
    for i, a in enumerate(axes):
        (img,) = a.images
        np.testing.assert_allclose(img.get_array(), filters.values[i])
        lo, hi = img.get_clim()
        assert lo == pytest.approx(-hi) and hi == pytest.approx(np.abs(filters.values[i]).max())
        assert pop.cell_type[i] in a.get_title()
    hidden = [a for a in axes[0].figure.axes if not a.get_visible()]
    assert len(hidden) == 2  # a 3 x 3 grid holds the 7 panels
    render(axes[0].figure, tmp_path, "receptive_fields_planted")
    shared = plot_receptive_fields(filters, neurons=[0, 3], scale="shared", ncols=2)
    peak = np.abs(filters.values[[0, 3]]).max()
    assert all(a.images[0].get_clim() == pytest.approx((-peak, peak)) for a in shared)
    assert len(shared[0].figure.axes) == 3  # two panels and a colorbar


def test_receptive_fields_of_a_fitted_encoding_model(tmp_path):
    pop = make_visual_population(n_neurons=3, n_images=60, image_size=10, n_test_images=5,
                                 n_repeats=2, random_state=1)
    model = ConvEncodingModel(channels=4, kernel_size=3, max_epochs=2, batch_size=16,
                              device="cpu", random_state=0).fit(pop.images, pop.responses)
    rf = model.receptive_fields()
    fig = Figure()
    own = fig.subplots(1, 3)
    axes = plot_receptive_fields(rf, ax=own)
    assert list(axes) == list(own)
    for i, a in enumerate(axes):
        np.testing.assert_allclose(a.images[0].get_array(), rf.values[i])
        assert a.images[0].get_cmap().name == "RdBu_r"
    with pytest.raises(ParameterError, match=r"\(neuron, y, x\)"):
        plot_receptive_fields(rf.values[0])
    with pytest.raises(ParameterError, match="'scale'"):
        plot_receptive_fields(rf, scale="global")


# ---------------------------------------------------------------------- tuning curves
def test_tuning_curves_points_means_and_fit(tmp_path):
    rng = np.random.default_rng(0)
    x = np.repeat(np.linspace(-np.pi, np.pi, 12, endpoint=False), 6)
    mu = rng.uniform(-3, 3, 5)
    Y = 1 + 4 * np.exp(2 * (np.cos(x[:, None] - mu) - 1)) + rng.normal(0, 0.4, (x.size, 5))
    model = ParametricRegressor("von_mises", device="cpu").fit(x, Y)
    axes = plot_tuning_curves(model, x, Y, xlabel="Direction (rad)", ylabel="Rate (Hz)")
    assert axes.shape == (5,)
    means = pd.DataFrame(Y).groupby(x).mean()
    grid = np.linspace(x.min(), x.max(), 200)
    for k, a in enumerate(axes):
        np.testing.assert_allclose(a.collections[0].get_offsets()[:, 1], Y[:, k])
        np.testing.assert_allclose(a.lines[0].get_ydata(), means[k].values)  # errorbar means
        np.testing.assert_allclose(a.lines[-1].get_xdata(), grid)
        np.testing.assert_allclose(a.lines[-1].get_ydata(), model.predict(grid)[:, k])
        assert a.get_title() == f"neuron {k}: R\u00b2 {r2_score(Y[:, k], model.predict(x)[:, k]):.2f}"
    assert axes[0].get_ylabel() == "Rate (Hz)" and axes[-1].get_xlabel() == "Direction (rad)"
    render(axes[0].figure, tmp_path, "tuning_curves")
    two = plot_tuning_curves(model, x, Y, neurons=[4, 1], ncols=2)
    assert [a.get_title().split(":")[0] for a in two] == ["neuron 4", "neuron 1"]
    with pytest.raises(ParameterError, match=r"\(n_samples, n_neurons\)"):
        plot_tuning_curves(model, x, Y[:, :3])
    with pytest.raises(ParameterError, match="fitted ParametricRegressor"):
        plot_tuning_curves(ParametricRegressor("von_mises"), x, Y)
