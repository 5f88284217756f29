"""Tools on latent spaces: traversals through a decoder, and consistency between embeddings."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
import xarray as xr
from sklearn.linear_model import LinearRegression

from .._validation import Interval, check_param
from ..device import to_numpy
from ..errors import NotFittedError, ParameterError

__all__ = ["latent_traversal", "consistency_score"]


def latent_traversal(estimator, dims=None, values=None, *, base=None) -> xr.DataArray:
    """Decoded outputs along latent axes, one axis at a time.

    For each latent dimension ``d`` in ``dims`` and each offset ``v`` in ``values`` the
    latent point ``base`` is moved to ``base[d] + v * latent_std_[d]`` (all other
    latents held at ``base``) and decoded with ``estimator.inverse_transform``.

    Parameters
    ----------
    estimator : fitted Autoencoder or VAE
        Any fitted estimator with ``inverse_transform``, ``n_latents``,
        ``latent_mean_`` and ``latent_std_``.
    dims : int or sequence of int, default=None
        Latent dimensions to traverse; all of them when None.
    values : array-like of shape (n_values,), default=None
        Offsets from ``base`` in standard deviations of each latent over the training
        data; ``np.linspace(-2, 2, 9)`` when None.
    base : array-like of shape (n_latents,), default=None
        The point traversed around; the mean of the training latents when None.

    Returns
    -------
    traversal : xarray.DataArray, dims ("dim", "value", <feature dim>)
        Decoded outputs (rates for Poisson models). Coordinates: ``dim`` (latent
        index), ``value`` (the offsets), ``latent_value`` (dim, value) the latent
        coordinate actually decoded, and the estimator's feature labels.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.representation import Autoencoder, latent_traversal
    >>> X = np.random.default_rng(0).normal(size=(100, 6))
    >>> ae = Autoencoder(2, max_epochs=2, random_state=0).fit(X)
    >>> latent_traversal(ae, dims=[0], values=[-1, 0, 1]).shape
    (1, 3, 6)
    """
    owner = "latent_traversal"
    if not hasattr(estimator, "inverse_transform") or not hasattr(estimator, "n_latents"):
        raise ParameterError(
            f"{owner} needs an estimator with a decoder (inverse_transform), such as "
            f"Autoencoder or VAE; got {type(estimator).__name__}."
        )
    if not hasattr(estimator, "latent_std_"):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; fit it before "
            f"calling {owner}."
        )
    k = int(estimator.n_latents)
    if dims is None:
        dims = list(range(k))
    elif isinstance(dims, Integral):
        dims = [int(dims)]
    dims = [int(d) for d in np.asarray(dims).ravel()]
    bad = [d for d in dims if not 0 <= d < k]
    if bad or not dims:
        raise ParameterError(
            f"The 'dims' parameter of {owner} must list latent indices in [0, {k - 1}]. "
            f"Got {bad or dims} instead."
        )
    values = np.linspace(-2.0, 2.0, 9) if values is None else np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ParameterError(
            f"The 'values' parameter of {owner} must be a non-empty 1-D array of finite "
            f"offsets. Got {values!r} instead."
        )
    base = np.asarray(estimator.latent_mean_ if base is None else base, dtype=np.float64)
    if base.shape != (k,) or not np.all(np.isfinite(base)):
        raise ParameterError(
            f"The 'base' parameter of {owner} must be a finite array of shape ({k},). "
            f"Got shape {base.shape} instead."
        )
    std = np.asarray(estimator.latent_std_, dtype=np.float64)
    Z = np.repeat(base[None, None, :], len(dims), 0).repeat(values.size, 1)
    for i, d in enumerate(dims):
        Z[i, :, d] = base[d] + values * std[d]
    out = np.asarray(estimator.inverse_transform(Z.reshape(-1, k))).reshape(len(dims), values.size, -1)
    feature_dim = getattr(estimator, "feature_dim_", "feature")
    coords = {
        "dim": np.asarray(dims),
        "value": values,
        "latent_value": (("dim", "value"), Z[np.arange(len(dims)), :, dims]),
    }
    labels = getattr(estimator, "feature_coords_", None)
    if labels is not None:
        coords[feature_dim] = np.asarray(labels)
    return xr.DataArray(out, dims=("dim", "value", feature_dim), coords=coords,
                        name="traversal")


def _as_2d(embedding, i: int) -> np.ndarray:
    if isinstance(embedding, torch.Tensor):
        embedding = to_numpy(embedding)
    elif isinstance(embedding, xr.DataArray):
        embedding = embedding.values
    arr = np.asarray(embedding, dtype=np.float64)
    if arr.ndim < 2:
        raise ParameterError(
            f"Embedding {i} passed to consistency_score has shape {arr.shape}; expected "
            "(n_samples, n_latents) or (trial, time, n_latents)."
        )
    arr = arr.reshape(-1, arr.shape[-1])
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"Embedding {i} passed to consistency_score contains NaN or infinity.")
    return arr


def _align(embeddings: list[np.ndarray], labels, n_bins: int) -> list[np.ndarray]:
    """Average each embedding within common label bins (CEBRA's between-datasets alignment)."""
    labs = []
    for i, (emb, lab) in enumerate(zip(embeddings, labels)):
        if isinstance(lab, torch.Tensor):
            lab = to_numpy(lab)
        lab = np.asarray(lab.values if isinstance(lab, xr.DataArray) else lab).ravel()
        if lab.shape[0] != emb.shape[0]:
            raise ParameterError(
                f"labels[{i}] has {lab.shape[0]} values but embedding {i} has "
                f"{emb.shape[0]} samples; give one label per sample."
            )
        labs.append(lab)
    discrete = all(lab.dtype.kind in "biuOSU" for lab in labs)
    if discrete:
        common = set(labs[0].tolist())
        for lab in labs[1:]:
            common &= set(lab.tolist())
        keys = sorted(common)
        if len(keys) < 2:
            raise ParameterError(
                "consistency_score needs at least 2 label values shared by all embeddings "
                f"to align them; shared: {keys}."
            )
        return [_unit_rows(np.stack([emb[lab == key].mean(0) for key in keys]))
                for emb, lab in zip(embeddings, labs)]
    labs = [lab.astype(np.float64) for lab in labs]
    lo = min(lab.min() for lab in labs)
    hi = max(lab.max() for lab in labs)
    edges = np.linspace(lo, hi, n_bins + 1)
    aligned = []
    for emb, lab in zip(embeddings, labs):
        idx = np.clip(np.searchsorted(edges, lab, side="right") - 1, 0, n_bins - 1)
        rows = []
        for b in range(n_bins):
            # the bin, else the nearest non-empty bins within 2 (CEBRA's coarse-to-fine)
            for width in (0, 1, 2):
                mask = np.abs(idx - b) <= width
                if mask.any():
                    rows.append(emb[mask].mean(0))
                    break
            else:
                raise ParameterError(
                    f"Label bin {b} of {n_bins} has no samples within 2 bins in one "
                    "embedding; use a smaller n_bins."
                )
        aligned.append(_unit_rows(np.stack(rows)))
    return aligned


def _unit_rows(a: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def consistency_score(embeddings, *, labels=None, n_bins=100, pairwise=False):
    """Consistency between embeddings: R² of the best linear map from one to another.

    As CEBRA defines it (``cebra.sklearn.metrics.consistency_score``): for every ordered
    pair ``(i, j)``, ``i != j``, a linear regression (with intercept) is fitted from
    embedding ``i`` to embedding ``j`` and its R² on those samples (averaged uniformly
    over the dimensions of ``j``) is the consistency of ``i`` to ``j``.

    - **Between runs** (``labels=None``): embeddings of the same samples (e.g. two
      seeds on one session); they must have the same number of samples.
    - **Between datasets** (``labels`` given, one array per embedding): each embedding
      is first averaged within common label values (discrete labels) or within
      ``n_bins`` equal bins spanning all labels (continuous labels; an empty bin takes
      the samples of the bins up to 2 away), and each averaged point is scaled to unit
      norm, as CEBRA's ``align_embeddings`` does, so sessions of different lengths are
      compared on the same behaviour.

    Parameters
    ----------
    embeddings : sequence of array-like, DataArray or tensor
        At least two, each ``(n_samples, n_latents)`` or ``(trial, time, n_latents)``;
        the latent dimensions may differ.
    labels : sequence of array-like, default=None
        One label per sample for each embedding (between datasets).
    n_bins : int, default=100
        Bins for continuous labels.
    pairwise : bool, default=False
        Return the full matrix instead of its mean.

    Returns
    -------
    score : float or ndarray of shape (n_embeddings, n_embeddings)
        The mean over all ordered pairs (for two embeddings, the average of both
        directions); with ``pairwise=True`` the matrix ``R2[i, j]`` (NaN on the diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.representation import consistency_score
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(500, 3))
    >>> b = a @ rng.normal(size=(3, 3)) + 0.01 * rng.normal(size=(500, 3))
    >>> round(consistency_score([a, b]), 3)
    1.0
    """
    owner = "consistency_score"
    check_param("n_bins", n_bins, [Interval(Integral, 1, None)], owner)
    check_param("pairwise", pairwise, ["boolean"], owner)
    if isinstance(embeddings, np.ndarray | torch.Tensor) or not hasattr(embeddings, "__len__"):
        raise ParameterError(
            f"{owner} takes a list of embeddings (at least 2); got {type(embeddings).__name__}."
        )
    embs = [_as_2d(e, i) for i, e in enumerate(embeddings)]
    if len(embs) < 2:
        raise ParameterError(f"{owner} needs at least 2 embeddings to compare; got {len(embs)}.")
    if labels is not None:
        if len(labels) != len(embs):
            raise ParameterError(
                f"{owner} got {len(embs)} embeddings but {len(labels)} label arrays; give "
                "one label array per embedding."
            )
        embs = _align(embs, list(labels), int(n_bins))
    else:
        sizes = {e.shape[0] for e in embs}
        if len(sizes) > 1:
            raise ParameterError(
                f"Between-runs consistency needs embeddings of the same samples; got "
                f"{[e.shape[0] for e in embs]} samples. Pass labels= to align embeddings "
                "of different recordings on behaviour."
            )
    n = len(embs)
    scores = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if i != j:
                scores[i, j] = LinearRegression().fit(embs[i], embs[j]).score(embs[i], embs[j])
    return scores if pairwise else float(np.nanmean(scores))
