"""The ``representation`` step: VAE, contrastive or autoencoder latents, with figures."""

from __future__ import annotations

import numbers

import numpy as np

from ..._validation import Interval, Options
from ..constraints import ListOf
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN

__all__ = ["representation"]

_MODELS = ("vae", "contrastive", "autoencoder")


def _estimator(model, *, n_latents, hidden_layer_sizes, likelihood, beta, positive,
               time_offset, max_epochs, batch_size, lr, patience, validation_fraction,
               device, random_state):
    from ...representation import VAE, Autoencoder, ContrastiveEmbedding

    common = dict(max_epochs=max_epochs, batch_size=batch_size, lr=lr, patience=patience,
                  validation_fraction=validation_fraction, device=device,
                  random_state=random_state)
    if hidden_layer_sizes is not None:
        common["hidden_layer_sizes"] = tuple(hidden_layer_sizes)
    if model == "vae":
        return VAE(n_latents, beta=beta, likelihood=likelihood, **common)
    if model == "autoencoder":
        return Autoencoder(n_latents, loss="mse" if likelihood == "gaussian" else "poisson",
                           **common)
    return ContrastiveEmbedding(n_latents, positive=positive, time_offset=time_offset, **common)


def _first_present(data, by):
    if by is None or "trial" not in data.dims:
        return None
    names = [by] if isinstance(by, str) else list(by)
    return next((b for b in names if b in data.coords and data[b].dims == ("trial",)), None)


@register_step(
    "representation",
    inputs={"data": Input("epochs", "(trial, time, unit) epochs or (time, unit) binned counts")},
    outputs={
        "embedding": Output("array", "(trial, time, latent) or (time, latent) latents, trial "
                                     "coordinates kept"),
        "training_history": Output("table", "per-epoch training and validation losses"),
        "representation": Output("metrics", "model, latents, epochs trained, best epoch, "
                                            "final losses"),
        "representation_latents": Output("figure", "trial-averaged latent trajectories per "
                                                   "condition"),
        "representation_training": Output("figure", "training and validation loss curves"),
    },
    params={
        "model": Param([Options(_MODELS)], "vae",
                       "vae (variational autoencoder), contrastive (CEBRA-style InfoNCE "
                       "embedding) or autoencoder"),
        "n_latents": Param([Interval(numbers.Integral, 2, None)], 3, "latent dimensions"),
        "hidden_layer_sizes": Param([ListOf((int,), min_len=0), None], None,
                                    "hidden widths (contrastive: conv channels then MLP "
                                    "widths); the model's default when null"),
        "likelihood": Param([Options(("poisson", "gaussian"))], "poisson",
                            "vae: observation model; autoencoder: poisson deviance or mse "
                            "(poisson needs counts, i.e. epochs with scale: counts)"),
        "beta": Param([Interval(numbers.Real, 0, None)], 1.0, "vae: weight of the KL term"),
        "positive": Param([Options(("time", "behavior"))], "time",
                          "contrastive: positives by time offset (self-supervised) or by "
                          "the trial label 'by'"),
        "time_offset": Param([Interval(numbers.Integral, 1, None)], 2,
                             "contrastive: offset of the positive in time bins"),
        "by": Param([*COLUMN, None], "condition",
                    "trial column for the latent figure's conditions and for "
                    "positive: behavior (a list: the first present)"),
        "max_epochs": Param([Interval(numbers.Integral, 1, None)], 50, "training epochs at most"),
        "batch_size": Param([Interval(numbers.Integral, 1, None)], 256, "samples per step"),
        "lr": Param([Interval(numbers.Real, 0, None, "neither")], 1e-3, "learning rate"),
        "patience": Param([Interval(numbers.Integral, 1, None), None], 10,
                          "epochs without validation improvement before stopping (null: "
                          "train max_epochs)"),
        "validation_fraction": Param([Interval(numbers.Real, 0, 1, "left")], 0.1,
                                     "whole trials held out for early stopping"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0,
                              "seed of initialisation, splits and batches"),
    },
)
def representation(ctx, *, data, model, n_latents, hidden_layer_sizes, likelihood, beta,
                   positive, time_offset, by, max_epochs, batch_size, lr, patience,
                   validation_fraction, random_state):
    """Learn low-dimensional latents of the population (VAE, contrastive or autoencoder)."""
    from ...errors import RecordingError
    from ...plotting import plot_training_curves, plot_trajectories

    group = _first_present(data, by)
    est = _estimator(model, n_latents=n_latents, hidden_layer_sizes=hidden_layer_sizes,
                     likelihood=likelihood, beta=beta, positive=positive,
                     time_offset=time_offset, max_epochs=max_epochs, batch_size=batch_size,
                     lr=lr, patience=patience, validation_fraction=validation_fraction,
                     device=ctx.device, random_state=random_state)
    X = data.astype(np.float32)
    if model == "contrastive" and positive == "behavior":
        if group is None:
            raise RecordingError(
                f"Recording '{ctx.recording_id}': positive: behavior needs a trial column "
                f"'by' ({by!r}) the epochs have; trial coordinates: "
                f"{[c for c in data.coords if data[c].dims == ('trial',) and c != 'trial']}"
            )
        est.fit(X, group)
    else:
        est.fit(X)
    latents = est.transform(X)
    latents.name = "embedding"
    history = est.history_.reset_index(drop=True)
    last = history.iloc[-1]
    metrics = {
        "model": model,
        "n_latents": int(n_latents),
        "epochs_trained": int(len(history)),
        "best_epoch": int(est.best_epoch_),
        "final_train_loss": float(last["train_loss"]),
        "final_val_loss": float(last["val_loss"]),
    }
    fig_lat = plot_trajectories(latents, by=group, dims=(0, 1)).figure
    fig_lat.axes[0].set_title(f"{model} latents")
    fig_train = plot_training_curves(history).figure
    return {"embedding": latents, "training_history": history, "representation": metrics,
            "representation_latents": fig_lat, "representation_training": fig_train}
