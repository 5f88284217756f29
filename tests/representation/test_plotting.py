"""Figures of representation learning render headless, draw what they should and leave
pyplot alone.

Set ``NEUROML_FIG_DIR=/some/folder`` to keep a PNG of each figure for a visual check.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neuroml import NotFittedError, ParameterError  # noqa: E402
from neuroml.plotting.representation import (  # noqa: E402
    plot_elbo_terms,
    plot_latents,
    plot_traversal,
)
from neuroml.representation import VAE, latent_traversal  # noqa: E402


@pytest.fixture(autouse=True)
def pyplot_untouched():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def render(ax, tmp_path: Path, name: str) -> None:
    """Save to PNG (and to $NEUROML_FIG_DIR); the image must not be blank."""
    fig = ax.figure
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=80)
    if os.environ.get("NEUROML_FIG_DIR"):
        out = Path(os.environ["NEUROML_FIG_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=110)
    img = mpimg.imread(path)[..., :3]
    non_white = np.mean(np.any(img < 0.95, axis=-1))
    assert 0.01 < non_white < 0.9, non_white


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n_trials, n_time, n_units = 24, 15, 10
    cond = np.arange(n_trials) % 4
    theta = 2 * np.pi * cond / 4
    t = np.linspace(0, 1, n_time)
    z = np.stack([np.cos(theta[:, None] + 2 * t), np.sin(theta[:, None] + 2 * t)], -1)
    rates = np.exp(0.5 + z @ rng.normal(scale=0.8, size=(2, n_units)))
    X = xr.DataArray(rng.poisson(rates).astype(float), dims=("trial", "time", "unit"),
                     coords={"trial": np.arange(n_trials), "time": t - 0.2,
                             "unit": np.arange(n_units), "condition": ("trial", cond),
                             "direction": ("trial", theta)},
                     attrs={"align_to": "movement_onset"})
    vae = VAE(3, likelihood="poisson", hidden_layer_sizes=(16,), max_epochs=12, lr=3e-3,
              random_state=0).fit(X)
    return X, vae, vae.transform(X)


def test_latents_discrete(fitted, tmp_path):
    _, _, Z = fitted
    ax = plot_latents(Z, color_by="condition")
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    assert ax.collections[0].get_offsets().shape == (24 * 15, 2)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    assert ax.get_xlabel() == "Latent 0" and ax.get_ylabel() == "Latent 1"
    render(ax, tmp_path, "representation_latents_condition")


def test_latents_continuous_3d(fitted, tmp_path):
    _, _, Z = fitted
    ax = plot_latents(Z, color_by="time", dims=(0, 1, 2))
    assert ax.name == "3d"
    assert len(ax.figure.axes) == 2  # the colorbar
    assert ax.figure.axes[1].get_ylabel() == "Time from movement_onset (s)"
    colors = ax.collections[0].get_array()
    np.testing.assert_allclose(colors, np.tile(Z["time"].values, 24))
    render(ax, tmp_path, "representation_latents_time_3d")


def test_latents_from_arrays_and_own_axes(fitted, tmp_path):
    _, _, Z = fitted
    fig = Figure()
    own = fig.add_subplot()
    values = Z.values.reshape(-1, 3)
    ax = plot_latents(values, color_by=np.repeat(Z["direction"].values, 15), dims=(2, 0),
                      ax=own, cmap="twilight")
    assert ax is own and ax.get_xlabel() == "Latent 2"
    ax2 = plot_latents(Z.values, color_by=Z["condition"].values)  # per-trial values
    assert ax2.collections[0].get_offsets().shape == (360, 2)
    render(ax, tmp_path, "representation_latents_direction")


@pytest.mark.parametrize("kwargs, match", [
    (dict(dims=(0, 3)), "'dims' parameter of plot_latents"),
    (dict(dims=(0,)), "'dims' parameter"),
    (dict(color_by="stimulus"), "names 'stimulus', which is not a coordinate"),
    (dict(color_by=np.zeros(7)), "'color_by' values of plot_latents have shape"),
])
def test_latents_errors(fitted, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        plot_latents(fitted[2], **kwargs)


def test_latents_needs_3d_axes_for_three_dims(fitted):
    with pytest.raises(ParameterError, match="3-D Axes"):
        plot_latents(fitted[2], dims=(0, 1, 2), ax=Figure().add_subplot())


def test_traversal_grid(fitted, tmp_path):
    _, vae, _ = fitted
    tr = latent_traversal(vae)
    axes = plot_traversal(tr)
    assert len(axes) == 3 and all(len(a.collections) == 1 for a in axes)
    mesh = axes[0].collections[0].get_array().reshape(10, 9)
    centred = tr.values[0].T - tr.values[0].T.mean(1, keepdims=True)
    np.testing.assert_allclose(mesh, centred)
    render(axes[0], tmp_path, "representation_traversal")
    few = plot_traversal(tr, features=[0, 3, 5], sort=True, center=False)
    assert [t.get_text() for t in few[0].get_yticklabels()] != []
    render(few[0], tmp_path, "representation_traversal_sorted")


def test_traversal_into_given_axes_and_errors(fitted):
    _, vae, _ = fitted
    tr = latent_traversal(vae, dims=[0, 2])
    fig = Figure()
    own = fig.subplots(1, 2)
    axes = plot_traversal(tr, ax=own)
    assert list(axes) == list(own)
    with pytest.raises(ParameterError, match="must be None or 2 matplotlib Axes"):
        plot_traversal(tr, ax=own[0])
    with pytest.raises(ParameterError, match="returned by latent_traversal"):
        plot_traversal(tr.values)


def test_elbo_terms(fitted, tmp_path):
    _, vae, _ = fitted
    axes = plot_elbo_terms(vae)
    assert len(axes) == 2 and [len(a.lines) for a in axes] == [2, 2]
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), vae.history_["train_kl"])
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), vae.history_["val_recon"])
    render(axes[0], tmp_path, "representation_elbo_terms")
    with pytest.raises(ParameterError, match="must be a VAE's history_"):
        plot_elbo_terms(vae.history_[["epoch", "train_loss", "val_loss"]])
    with pytest.raises(NotFittedError):
        plot_elbo_terms(VAE())
