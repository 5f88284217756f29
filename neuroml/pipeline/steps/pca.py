"""The ``pca`` step: principal components with explained-variance and trajectory figures."""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..._validation import Interval
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN

__all__ = ["pca"]


@register_step(
    "pca",
    inputs={"data": Input("epochs", "(trial, time, unit) epochs or (time, unit) binned counts")},
    outputs={
        "latents": Output("array", "projections on the components: (trial, time, component) "
                                   "or (time, component), trial coordinates kept"),
        "explained_variance": Output("array", "(component,) fraction of variance explained "
                                              "by each component"),
        "pca": Output("metrics", "components kept, total and first-component variance "
                                 "explained, samples and features"),
        "pca_explained_variance": Output("figure", "variance explained per component, "
                                                   "with the cumulative sum"),
        "pca_trajectories": Output("figure", "trial-averaged trajectories on PC1-PC2, one per "
                                             "condition"),
    },
    params={
        "n_components": Param([Interval(numbers.Integral, 1, None),
                               Interval(numbers.Real, 0, 1, "neither")], 10,
                              "components to keep (capped at the number of units and samples), "
                              "or a fraction of variance to explain"),
        "whiten": Param(["boolean"], False, "scale the projections to unit variance"),
        "by": Param([*COLUMN, None], "condition",
                    "trial column the trajectories are averaged by (a list: the first present; "
                    "all trials together when absent or null)"),
        "random_state": Param([Interval(numbers.Integral, 0, None), None], 0,
                              "seed of the randomized solver (used on large inputs)"),
    },
)
def pca(ctx, *, data, n_components, whiten, by, random_state):
    """Principal component analysis of the population activity (samples: trials x time bins)."""
    from ...decomposition import PCA
    from ...plotting import plot_explained_variance, plot_trajectories

    n_features = int(data.sizes[data.dims[-1]])
    n_samples = int(np.prod([data.sizes[d] for d in data.dims[:-1]]))
    k = n_components
    if isinstance(k, numbers.Integral):
        k = int(min(k, n_features, n_samples))
    est = PCA(n_components=k, whiten=whiten, device=ctx.device, random_state=random_state)
    latents = est.fit_transform(data.astype(np.float64))
    latents.name = "latents"
    ratio = np.asarray(est.explained_variance_ratio_, dtype=np.float64)
    components = np.arange(est.n_components_)
    explained = xr.DataArray(ratio, dims="component", coords={"component": components},
                             name="explained_variance",
                             attrs={"description": "fraction of total variance explained"})
    metrics = {
        "n_components": int(est.n_components_),
        "variance_explained": float(ratio.sum()),
        "pc1_variance": float(ratio[0]),
        "n_samples": n_samples,
        "n_features": n_features,
    }
    fig_var = plot_explained_variance(ratio).figure
    group = None
    if "trial" in latents.dims and by is not None:
        names = [by] if isinstance(by, str) else list(by)
        group = next((b for b in names if b in latents.coords
                      and latents[b].dims == ("trial",)), None)
    if est.n_components_ >= 2:
        fig_traj = plot_trajectories(latents, by=group, dims=(0, 1)).figure
    else:  # one component: its time course instead of a plane
        from ...plotting import new_figure

        fig_traj = new_figure()
        ax = fig_traj.add_subplot()
        pc1 = latents.isel(component=0)
        if "trial" in pc1.dims:
            pc1 = pc1.mean("trial")
        x = pc1["time"].values if "time" in pc1.coords else np.arange(pc1.size)
        ax.plot(x, pc1.values)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("PC1")
    return {"latents": latents, "explained_variance": explained, "pca": metrics,
            "pca_explained_variance": fig_var, "pca_trajectories": fig_traj}
