"""Every plotting function renders headless, draws what it should, and leaves pyplot alone.

Set ``NEUROML_FIG_DIR=/some/folder`` to also keep one PNG of each figure there for a
visual check.
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
import scipy.stats  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from neuroml import PCA, ParameterError, Recording, SpikeTrains  # noqa: E402
from neuroml import plotting as nplt  # noqa: E402

# ------------------------------------------------------------------ helpers and data


@pytest.fixture(autouse=True)
def pyplot_untouched():
    """No plotting function may create, close or switch pyplot figures."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def render(ax_or_fig, tmp_path: Path, name: str) -> np.ndarray:
    """Save the figure to PNG (and to $NEUROML_FIG_DIR), check it is not blank, return pixels."""
    fig = ax_or_fig if isinstance(ax_or_fig, Figure) else ax_or_fig.figure
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=80)
    if os.environ.get("NEUROML_FIG_DIR"):
        out = Path(os.environ["NEUROML_FIG_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=110)
    assert path.stat().st_size > 5_000
    img = mpimg.imread(path)[..., :3]
    non_white = np.mean(np.any(img < 0.95, axis=-1))
    assert 0.01 < non_white < 0.9, non_white
    return img


def own_axes(projection=None) -> Axes:
    fig = Figure()
    return fig.add_subplot(projection=projection)


def poisson_recording(n_units=6, n_trials=24, seed=0) -> Recording:
    """Trials every 2 s, a stimulus at +0.5 s; condition 'b' units fire more after it."""
    rng = np.random.default_rng(seed)
    starts = np.arange(n_trials) * 2.0 + 0.25
    stim = starts + 0.5
    condition = np.array(["a", "b"] * (n_trials // 2))
    trains = []
    for u in range(n_units):
        t = list(rng.uniform(0, starts[-1] + 2.0, rng.poisson(5.0 * (starts[-1] + 2.0))))
        for s, c in zip(stim, condition):
            rate = 40.0 if c == "b" else 10.0 + 2 * u
            t += list(s + rng.uniform(0.0, 0.4, rng.poisson(rate * 0.4)))
        trains.append(np.sort(t))
    trials = pd.DataFrame({"start_time": starts, "stop_time": starts + 1.5,
                           "stimulus": stim, "condition": condition})
    return Recording.from_arrays(spike_times=trains, unit_ids=np.arange(100, 100 + n_units),
                                 trials=trials)


@pytest.fixture(scope="module")
def rec():
    return poisson_recording()


@pytest.fixture(scope="module")
def latents():
    """(trial, time, component) PCA output of rotating trajectories in 4 conditions."""
    rng = np.random.default_rng(1)
    n_trials, n_time, n_units = 40, 30, 12
    time = np.linspace(-0.2, 0.8, n_time)
    condition = np.repeat(np.arange(4), n_trials // 4)
    phase = condition * np.pi / 2
    angle = phase[:, None] + 2 * np.pi * 0.8 * time[None, :]
    lat = np.stack([np.cos(angle), np.sin(angle), 0.3 * time[None, :].repeat(n_trials, 0)], -1)
    mixing = rng.standard_normal((3, n_units))
    X = lat @ mixing + 0.05 * rng.standard_normal((n_trials, n_time, n_units))
    da = xr.DataArray(X, dims=("trial", "time", "unit"),
                      coords={"trial": np.arange(n_trials), "time": time,
                              "condition": ("trial", condition)},
                      attrs={"align_to": "movement_onset", "bin_size": time[1] - time[0]})
    return PCA(3, device="cpu").fit_transform(da)


# ------------------------------------------------------------------ PCA


def test_plot_explained_variance(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)) * np.linspace(3, 0.5, 12)
    pca = PCA(device="cpu").fit(X)
    ax = nplt.plot_explained_variance(pca, threshold=0.9)
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, pca.explained_variance_ratio_)
    cum = ax.lines[0].get_ydata()
    np.testing.assert_allclose(cum, np.cumsum(pca.explained_variance_ratio_))
    assert cum[-1] == pytest.approx(1.0)
    assert ax.get_xlabel() == "Principal component"
    assert ax.get_ylabel() == "Explained variance"
    assert ax.get_title() == "Explained variance"
    assert len(ax.lines) == 2  # cumulative + threshold
    render(ax, tmp_path, "explained_variance")
    # Plain ratios, into a given Axes.
    own = own_axes()
    out = nplt.plot_explained_variance(pca.explained_variance_ratio_[:5], ax=own, cumulative=False)
    assert out is own and len(own.patches) == 5 and not own.lines
    with pytest.raises(ParameterError, match="explained variance ratios"):
        nplt.plot_explained_variance([0.5, np.nan])


def test_plot_trajectories_2d(latents, tmp_path):
    ax = nplt.plot_trajectories(latents, by="condition", dims=(0, 1))
    means = latents.groupby("condition").mean("trial")
    lines = [ln for ln in ax.lines if ln.get_label() in {"0", "1", "2", "3"}]
    assert len(lines) == 4
    for ln, cond in zip(lines, means["condition"].values):
        np.testing.assert_allclose(ln.get_xdata(), means.sel(condition=cond)[:, 0])
        np.testing.assert_allclose(ln.get_ydata(), means.sel(condition=cond)[:, 1])
    colours = {tuple(ln.get_color()) for ln in lines}
    assert len(colours) == 4
    # a start marker per condition at the first time bin
    starts = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markersize() == 6]
    assert len(starts) == 4
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC1", "PC2")
    assert ax.get_title() == "Trajectories by condition"
    assert ax.get_legend().get_title().get_text() == "condition"
    render(ax, tmp_path, "trajectories_2d")
    own = own_axes()
    assert nplt.plot_trajectories(latents, dims=(1, 2), ax=own, legend=False) is own
    assert own.get_xlabel() == "PC2" and own.get_legend() is None


def test_plot_trajectories_3d(latents, tmp_path):
    ax = nplt.plot_trajectories(latents, dims=(0, 1, 2))
    assert ax.name == "3d"
    assert ax.get_zlabel() == "PC3"
    assert len([ln for ln in ax.lines if ln.get_label() in {"0", "1", "2", "3"}]) == 4
    render(ax, tmp_path, "trajectories_3d")
    with pytest.raises(ParameterError, match="3-D Axes"):
        nplt.plot_trajectories(latents, dims=(0, 1, 2), ax=own_axes())
    with pytest.raises(ParameterError, match=r"'dims'.*\[0, 2\]"):
        nplt.plot_trajectories(latents, dims=(0, 5))
    with pytest.raises(ParameterError, match="trial coordinate.*'condition'"):
        nplt.plot_trajectories(latents, by="choice")
    # by=None: one grand-average trajectory
    ax1 = nplt.plot_trajectories(latents, by=None)
    assert [ln.get_label() for ln in ax1.lines].count("all trials") == 1


# ------------------------------------------------------------------ decoding


def decoding_scores(n_folds=5, seed=0):
    rng = np.random.default_rng(seed)
    time = np.round(np.arange(-0.2, 0.81, 0.02), 10)
    signal = 0.5 + 0.35 * np.exp(-((time - 0.3) ** 2) / (2 * 0.1**2))
    values = signal + 0.04 * rng.standard_normal((n_folds, time.size))
    return xr.DataArray(values, dims=("fold", "time"), coords={"time": time},
                        attrs={"align_to": "stimulus", "scoring": "accuracy"})


def test_plot_decoding_over_time(tmp_path):
    scores = decoding_scores()
    pvalues = np.where(np.abs(scores["time"].values - 0.3) < 0.15, 0.001, 0.5)
    ax = nplt.plot_decoding_over_time(scores, chance=0.5, pvalues=pvalues)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), scores.values.mean(0))
    band = ax.collections[0].get_paths()[0].vertices
    sem = scipy.stats.sem(scores.values, axis=0)
    assert band[:, 1].max() == pytest.approx((scores.values.mean(0) + sem).max())
    assert band[:, 1].min() == pytest.approx((scores.values.mean(0) - sem).min())
    chance = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == 0.5
    bars = [ln for ln in ax.lines if ln.get_linewidth() == 3]
    assert len(bars) == 1  # one contiguous run of significant bins
    x0, x1 = bars[0].get_xdata()
    sig_times = scores["time"].values[pvalues <= 0.05]
    assert x0 == pytest.approx(sig_times.min() - 0.01) and x1 == pytest.approx(sig_times.max() + 0.01)
    assert ax.get_xlabel() == "Time from stimulus (s)"
    assert ax.get_ylabel() == "Accuracy"
    assert ax.get_title() == "Decoding over time"
    render(ax, tmp_path, "decoding_over_time")
    # no folds, into a given Axes
    own = own_axes()
    out = nplt.plot_decoding_over_time(scores.isel(fold=0), ax=own)
    assert out is own and len(own.collections) == 0
    with pytest.raises(ParameterError, match=r"dims \('time', '\[fold\]'\)"):
        nplt.plot_decoding_over_time(scores.rename(time="tme"))
    with pytest.raises(ParameterError, match="one p-value per time bin"):
        nplt.plot_decoding_over_time(scores, pvalues=[0.1, 0.2])


def test_plot_temporal_generalization(tmp_path):
    t = np.round(np.arange(-0.2, 0.81, 0.05), 10)
    train, test = np.meshgrid(t, t, indexing="ij")
    values = 0.5 + 0.4 * np.exp(-((train - test) ** 2) / 0.02) * (train > 0)
    values[0, -1] = 0.3  # below chance somewhere
    matrix = xr.DataArray(values, dims=("train_time", "test_time"),
                          coords={"train_time": t, "test_time": t},
                          attrs={"align_to": "stimulus", "scoring": "accuracy"})
    ax = nplt.plot_temporal_generalization(matrix, chance=0.5)
    assert len(ax.images) == 1
    im = ax.images[0]
    np.testing.assert_allclose(im.get_array(), values)
    vmin, vmax = im.get_clim()
    # centred on chance, spanning only the data (no impossible accuracies on the scale)
    assert im.norm.vcenter == pytest.approx(0.5)
    assert (vmin, vmax) == (pytest.approx(values.min()), pytest.approx(values.max()))
    # an explicit vlim is a symmetric half-range around chance
    im2 = nplt.plot_temporal_generalization(matrix, chance=0.5, vlim=0.5).images[0]
    assert im2.get_clim() == (pytest.approx(0.0), pytest.approx(1.0))
    assert im.get_cmap().name == "RdBu_r"
    assert ax.get_xlabel() == "Testing time from stimulus (s)"
    assert ax.get_ylabel() == "Training time from stimulus (s)"
    assert len(ax.figure.axes) == 2  # the colorbar
    assert ax.figure.axes[1].get_ylabel() == "Accuracy"
    diag = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(diag) == 1
    render(ax, tmp_path, "temporal_generalization")
    own = own_axes()
    assert nplt.plot_temporal_generalization(matrix, ax=own, colorbar=False) is own
    assert own.images[0].get_cmap().name == "viridis"  # no chance level: not centred
    with pytest.raises(ParameterError, match="train_time"):
        nplt.plot_temporal_generalization(matrix.rename(train_time="train"))


def test_plot_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 4, 400))
    labels = ["left", "right", "up", "down"]
    cm = confusion_matrix(y, pred)
    ax = nplt.plot_confusion_matrix(cm, labels=labels)
    np.testing.assert_allclose(ax.images[0].get_array(),
                               confusion_matrix(y, pred, normalize="true"))
    assert len(ax.texts) == 16
    assert ax.texts[0].get_text() == f"{confusion_matrix(y, pred, normalize='true')[0, 0]:.2f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted class", "True class")
    render(ax, tmp_path, "confusion_matrix")
    da = xr.DataArray(cm, dims=("true", "predicted"),
                      coords={"true": labels, "predicted": labels})
    own = own_axes()
    out = nplt.plot_confusion_matrix(da, normalize=False, ax=own, colorbar=False)
    assert out is own
    np.testing.assert_array_equal(own.images[0].get_array(), cm)
    assert own.texts[5].get_text() == str(cm[1, 1])
    assert [t.get_text() for t in own.get_yticklabels()] == labels
    with pytest.raises(ParameterError, match="square"):
        nplt.plot_confusion_matrix(np.ones((2, 3)))


# ------------------------------------------------------------------ training


def test_plot_training_curves(tmp_path):
    epoch = np.arange(1, 41)
    history = pd.DataFrame({
        "epoch": epoch,
        "train_loss": 2.0 * np.exp(-epoch / 8) + 0.1,
        "val_loss": 2.0 * np.exp(-epoch / 8) + 0.15 + 0.004 * np.maximum(epoch - 20, 0),
        "train_kl": 0.5 * (1 - np.exp(-epoch / 5)),
        "val_kl": 0.55 * (1 - np.exp(-epoch / 5)),
        "seconds": np.full(40, 0.01),
    })
    ax = nplt.plot_training_curves(history)
    curves = [ln for ln in ax.lines if ln.get_label() and not ln.get_label().startswith("best")]
    assert [ln.get_label() for ln in curves] == [
        "training loss", "validation loss", "training kl", "validation kl"]
    np.testing.assert_allclose(curves[1].get_ydata(), history["val_loss"])
    best = [ln for ln in ax.lines if ln.get_label().startswith("best epoch")]
    assert best[0].get_xdata()[0] == history["epoch"][history["val_loss"].idxmin()]
    assert (ax.get_xlabel(), ax.get_title()) == ("Epoch", "Training curves")
    assert ax.get_ylabel().startswith("Loss")
    render(ax, tmp_path, "training_curves")

    class Fitted:  # an estimator-like object with history_
        history_ = history.assign(val_loss=np.nan)[["epoch", "train_loss", "val_loss"]]

    own = own_axes()
    assert nplt.plot_training_curves(Fitted(), ax=own, log=False) is own
    assert [ln.get_label() for ln in own.lines][:1] == ["training loss"]
    assert own.get_yscale() == "linear"
    with pytest.raises(ParameterError, match="available terms: \\['kl'\\]"):
        nplt.plot_training_curves(history, terms=["recon"])
    with pytest.raises(ParameterError, match="train_loss"):
        nplt.plot_training_curves(pd.DataFrame({"loss": [1.0]}))


# ------------------------------------------------------------------ spikes


def test_plot_raster_population(rec, tmp_path):
    ax = nplt.plot_raster(rec, start=0.0, stop=10.0)
    segs = np.concatenate([c.get_segments() for c in ax.collections])
    expected = sum(int(np.sum((t >= 0) & (t < 10.0))) for t in rec.spikes)
    assert len(segs) == expected > 0
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(u) for u in range(100, 106)]
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == "Unit"
    assert ax.get_xlim() == (0.0, 10.0)
    render(ax, tmp_path, "raster_population")
    # many units: ticks at some rows, labelled with the unit ids of those rows
    many = SpikeTrains.from_list([np.sort(np.random.default_rng(i).uniform(0, 5, 20))
                                  for i in range(30)], unit_ids=np.arange(1000, 1030))
    big = nplt.plot_raster(many)
    big.figure.canvas.draw()
    shown = [(t.get_position()[1], t.get_text()) for t in big.get_yticklabels() if t.get_text()]
    assert len(shown) >= 3
    assert all(text == str(1000 + int(round(y))) for y, text in shown)
    own = own_axes()
    assert nplt.plot_raster(rec.spikes, units=[101, 103], ax=own) is own
    assert len(np.concatenate([c.get_segments() for c in own.collections])) == (
        rec.spikes[101].size + rec.spikes[103].size)


def test_plot_raster_trials(rec, tmp_path):
    ax = nplt.plot_raster(rec, unit=102, align_to="stimulus", window=(-0.5, 1.0), by="condition")
    assert len(ax.collections) == 2  # one colour per condition
    n = sum(len(c.get_segments()) for c in ax.collections)
    t = rec.spikes[102]
    expected = sum(int(np.sum((t >= s - 0.5) & (t < s + 1.0))) for s in rec.trials["stimulus"])
    assert n == expected
    # rows 0..11 are condition "a", 12..23 condition "b"
    rows_a = np.array([seg[:, 1].mean() for seg in ax.collections[0].get_segments()])
    rows_b = np.array([seg[:, 1].mean() for seg in ax.collections[1].get_segments()])
    assert rows_a.max() <= 11 and rows_b.min() >= 12
    assert ax.get_xlabel() == "Time from stimulus (s)"
    assert ax.get_ylabel() == "Trial (sorted by condition)"
    assert ax.get_legend().get_title().get_text() == "condition"
    render(ax, tmp_path, "raster_trials")
    with pytest.raises(ParameterError, match="'unit' parameter .* required"):
        nplt.plot_raster(rec, align_to="stimulus")
    with pytest.raises(OSError, match="columns"):
        nplt.plot_raster(rec, unit=102, align_to="go_cue")


def test_plot_psth(rec, tmp_path):
    epochs = rec.epochs("stimulus", (-0.5, 1.0), 0.05)
    ax = nplt.plot_psth(epochs, unit=100, by="condition")
    counts = epochs.sel(unit=100).values
    cond = epochs["condition"].values
    lines = [ln for ln in ax.lines if "(n=" in ln.get_label()]
    assert [ln.get_label() for ln in lines] == ["a (n=12)", "b (n=12)"]
    for ln, c in zip(lines, ["a", "b"]):
        np.testing.assert_allclose(ln.get_ydata(), counts[cond == c].mean(0) / 0.05)
    # the planted response: condition b fires at ~40 Hz during [0, 0.4) s after the stimulus
    during = (epochs["time"].values > 0.05) & (epochs["time"].values < 0.35)
    assert lines[1].get_ydata()[during].mean() == pytest.approx(45.0, abs=8)
    assert len(ax.collections) == 2  # s.e.m. bands
    assert ax.get_ylabel() == "Firing rate (Hz)"
    assert ax.get_xlabel() == "Time from stimulus (s)"
    assert ax.get_title() == "Unit 100 by condition"
    render(ax, tmp_path, "psth")
    own = own_axes()
    assert nplt.plot_psth(epochs, unit=101, by=None, ax=own, sem=False) is own
    assert not own.collections
    with pytest.raises(ParameterError, match="unit ids"):
        nplt.plot_psth(epochs, unit=7)
    with pytest.raises(ParameterError, match="bin_size"):
        nplt.plot_psth(epochs.assign_attrs(bin_size=None), unit=100)


def test_all_exported():
    import neuroml.plotting as mod

    for name in mod.__all__:
        assert callable(getattr(mod, name))
