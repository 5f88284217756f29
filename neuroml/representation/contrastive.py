"""Contrastive embeddings of neural activity (InfoNCE, as in CEBRA).

The estimator and its loss; which rows form positive and negative pairs is
:mod:`neuroml.representation._sampling`.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from .._validation import Interval, Options
from ..device import full_float32, seed_from, to_numpy, torch_seed
from ..errors import ParameterError
from ..training import TRAINING_CONSTRAINTS, Trainer
from ._base import _CHUNK, _Flat, _RepresentationBase
from ._networks import ACTIVATIONS, WindowEncoder
from ._sampling import PositiveSampler, SampleLayout, time_anchors

__all__ = ["ContrastiveEmbedding", "infonce"]


def infonce(ref: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """InfoNCE loss with independent negatives, as CEBRA computes it.

    ``mean_i [ -<ref_i, pos_i> / T + log sum_j exp(<ref_i, neg_j> / T) ]`` for unit-norm
    embeddings ``ref``, ``pos`` (B, d) and ``neg`` (M, d).
    """
    pos_sim = (ref * pos).sum(-1) / temperature
    neg_sim = ref @ neg.T / temperature
    return (torch.logsumexp(neg_sim, dim=1) - pos_sim).mean()


class ContrastiveEmbedding(_RepresentationBase):
    """Contrastive embedding of neural activity on the unit sphere (CEBRA-style InfoNCE).

    An encoder (a 1-D convolution over a window of ``window`` time bins, then an MLP)
    maps each time bin's surrounding activity to a point on the unit sphere in
    ``n_latents`` dimensions. It is trained so that a reference sample is closer to its
    *positive* than to negatives drawn uniformly from the data, with the InfoNCE loss
    ``-<f(x), f(x+)> / T + log sum_j exp(<f(x), f(x-_j)> / T)`` (Schneider, Lee &
    Mathis 2023, *Nature* 617:360). Positives are chosen by

    - ``positive="time"`` (self-supervised): the sample ``time_offset`` bins later in
      the same trial;
    - ``positive="behavior"``: a sample with the same label (discrete ``y``: integer,
      bool or string labels), or for continuous ``y`` (float) the sample whose
      behaviour is nearest to the reference's plus Gaussian jitter of ``delta``
      standard deviations (CEBRA's "delta" conditional distribution).

    ``(trial, time, unit)`` input is handled trial by trial: windows are padded by
    repeating each trial's edge bins and positives never cross trials; validation holds
    out whole trials. 2-D ``(time, unit)`` input is one continuous recording (rows are
    consecutive time bins); its last ``validation_fraction`` is held out.

    Parameters
    ----------
    n_latents : int, default=3
        Embedding dimension (>= 2); embeddings lie on the unit sphere.
    positive : {"time", "behavior"}, default="time"
        How positive pairs are chosen (see above).
    time_offset : int, default=2
        Offset in bins of the positive for ``positive="time"`` (>= 1).
    window : int, default=5
        Time bins the encoder sees around each sample (>= 1; centred, odd is symmetric).
    temperature : float, default=0.5
        InfoNCE temperature T (> 0).
    delta : float, default=0.1
        Jitter for continuous behaviour, in standard deviations of each variable (>= 0).
    hidden_layer_sizes : tuple of int, default=(32, 32)
        Channels of the convolution, then hidden widths of the MLP.
    activation : {"relu", "gelu", "tanh", "elu", "softplus", "identity"}, default="gelu"
    max_epochs : int, default=100
        An epoch is one pass over all reference samples.
    batch_size : int, default=512
        Reference samples per step; as many negatives are drawn per step.
    lr : float, default=3e-3
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    validation_fraction : float, default=0.1
    patience : int or None, default=10
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds initialisation, the sampling of positives and negatives, the split and
        the batches.

    Attributes
    ----------
    module_ : WindowEncoder
    history_ : pandas.DataFrame
        Per-epoch InfoNCE on the training and validation references.
    best_epoch_ : int
    behavior_kind_ : {"none", "discrete", "continuous"}
    classes_ : ndarray or None
        Labels of discrete behaviour.
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.representation import ContrastiveEmbedding
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(2.0, size=(20, 30, 15)).astype(float)      # (trial, time, unit)
    >>> emb = ContrastiveEmbedding(3, max_epochs=2, random_state=0).fit(X)
    >>> Z = emb.transform(X)
    >>> Z.shape, bool(np.allclose(np.linalg.norm(Z, axis=-1), 1.0))
    ((20, 30, 3), True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_latents": [Interval(Integral, 2, None)],
        "positive": [Options(("time", "behavior"))],
        "time_offset": [Interval(Integral, 1, None)],
        "window": [Interval(Integral, 1, None)],
        "temperature": [Interval(Real, 0, None, "neither")],
        "delta": [Interval(Real, 0, None)],
        "hidden_layer_sizes": [tuple, list],
        "activation": [Options(tuple(ACTIVATIONS))],
        "weight_decay": [Interval(Real, 0, None)],
        "device": ["device"],
        "random_state": ["random_state"],
        **TRAINING_CONSTRAINTS,
    }
    # window=1: scikit-learn's checks shuffle and subset rows, which changes a windowed
    # encoder's input by design; the windowed path is tested in tests/representation.
    _test_params: ClassVar[dict] = {"max_epochs": 3, "hidden_layer_sizes": (8,), "window": 1,
                                    "time_offset": 1, "batch_size": 64}

    def __init__(self, n_latents=3, *, positive="time", time_offset=2, window=5, temperature=0.5,
                 delta=0.1, hidden_layer_sizes=(32, 32), activation="gelu", max_epochs=100,
                 batch_size=512, lr=3e-3, weight_decay=0.0, optimizer="adam",
                 validation_fraction=0.1, patience=10, verbose=False, device="auto",
                 random_state=None):
        self.n_latents = n_latents
        self.positive = positive
        self.time_offset = time_offset
        self.window = window
        self.temperature = temperature
        self.delta = delta
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    def _build_module(self) -> dict[str, torch.nn.Module]:
        module = WindowEncoder(self.n_features_in_, self.n_latents, self.window,
                               tuple(self.hidden_layer_sizes), self.activation)
        return {"module_": module.to(self.device_)}

    # ------------------------------------------------------------------ behaviour
    def _behavior(self, X, y, flat: _Flat):
        """Per-sample labels (codes) or standardised continuous behaviour on the device."""
        name = type(self).__name__
        if y is None:
            raise ParameterError(
                f"{name} with positive='behavior' needs y: labels or behavioural variables "
                "per sample, per trial, or the name of a trial coordinate of X."
            )
        if isinstance(y, str):
            if not isinstance(X, xr.DataArray) or y not in X.coords:
                coords = list(X.coords) if isinstance(X, xr.DataArray) else []
                raise ParameterError(
                    f"y={y!r} names no coordinate of X; coordinates: {coords}."
                )
            y = X[y].values
        elif isinstance(y, torch.Tensor):
            y = to_numpy(y)
        elif isinstance(y, xr.DataArray):
            y = y.values
        y = np.asarray(y)
        n = int(np.prod(flat.shape))
        if flat.trials and y.ndim >= 1 and y.shape[0] == flat.shape[0] and (
            y.ndim == 1 or y.shape[1] != flat.shape[1]
        ):
            y = np.repeat(y[:, None], flat.shape[1], axis=1)  # one value per trial
        if flat.trials and y.shape[:2] == flat.shape:
            y = y.reshape(n, *y.shape[2:])
        if y.ndim == 0 or y.shape[0] != n or y.ndim > 2:
            raise ParameterError(
                f"y has shape {y.shape}; {name} expects one value (or row of values) per "
                f"sample: ({n},) or ({n}, n_variables)"
                + (f", or per trial: ({flat.shape[0]},)" if flat.trials else "") + "."
            )
        if y.dtype.kind in "biuOSU":
            if y.ndim != 1:
                raise ParameterError(f"Discrete y must be 1-D labels; got shape {y.shape}.")
            classes, codes = np.unique(y, return_inverse=True)
            self.behavior_kind_ = "discrete"
            self.classes_ = classes
            return torch.as_tensor(codes, device=self.device_), None
        y = y.astype(np.float64).reshape(n, -1)
        if not np.all(np.isfinite(y)):
            raise ParameterError(f"Continuous y passed to {name} contains NaN or infinity.")
        std = y.std(0)
        y = (y - y.mean(0)) / np.where(std > 0, std, 1.0)
        self.behavior_kind_ = "continuous"
        self.classes_ = None
        return None, torch.as_tensor(y, dtype=torch.float32, device=self.device_)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the embedding.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
            Activity. 2-D rows are consecutive time bins of one recording.
        y : array-like, str or None, default=None
            Behaviour for ``positive="behavior"``: shape ``(n_samples,)`` or
            ``(n_samples, n_variables)``; for trial input also ``(trial,)`` (one value
            per trial, e.g. reach direction), ``(trial, time[, n_variables])``, or the
            name of a trial coordinate of a DataArray ``X`` (e.g. ``"condition"``).
            Integer, bool or string values are labels; floats are continuous. Ignored
            for ``positive="time"``.

        Returns
        -------
        self : ContrastiveEmbedding
        """
        self._validate_params()
        self._check_hidden()
        self._resolve_device()
        flat = self._flatten(X, reset=True)
        dev = self.device_
        Xf = flat.X.float()
        n = Xf.shape[0]
        structure = SampleLayout(flat.shape, dev)
        windows = structure.windows(self.window)
        seed = seed_from(self.random_state)

        # Validation: whole trials, or the end of a 2-D recording. ``segment`` marks
        # the pieces positives may not cross; ``pool`` is 0 (train) or 1 (validation).
        split = self._trial_split(flat.shape, seed)
        pool = torch.zeros(n, dtype=torch.long, device=dev)
        if split is not None:
            pool[split[1].to(dev)] = 1
            segment = structure.start
        else:
            cut = n - int(np.floor(self.validation_fraction * n))
            pool[cut:] = 1
            segment = (torch.arange(n, device=dev) >= cut).long()

        if self.positive == "time":
            self.behavior_kind_ = "none"
            self.classes_ = None
            anchors = time_anchors(segment, self.time_offset)
            labels = values = None
        else:
            labels, values = self._behavior(X, y, flat)
            anchors = torch.arange(n, device=dev)
        if anchors.numel() == 0:
            per = flat.shape[-1]
            raise ParameterError(
                f"{type(self).__name__} with positive='time' and time_offset="
                f"{self.time_offset} needs more than time_offset samples per trial; got "
                f"{per} sample(s) per trial. Use a smaller time_offset or longer trials."
            )
        in_val = pool[anchors] == 1
        train_pos = torch.nonzero(~in_val).squeeze(1)
        val_pos = torch.nonzero(in_val).squeeze(1)
        if train_pos.numel() == 0:
            train_pos, val_pos = torch.arange(anchors.numel(), device=dev), val_pos[:0]
        if val_pos.numel() < 2:
            train_pos = torch.arange(anchors.numel(), device=dev)
            val_pos = val_pos[:0]
        pools = [anchors[train_pos], anchors[val_pos] if val_pos.numel() else anchors[train_pos]]

        sampler = PositiveSampler(self.positive, self.time_offset, pools, labels, values,
                                   float(self.delta), seed, dev)
        temperature = float(self.temperature)

        def loss_fn(module, ref_rows):
            which = 0 if module.training else 1
            pos_rows = sampler.positives(ref_rows, which)
            neg_rows = sampler.negatives(ref_rows.numel(), which)
            emb = module(Xf[windows[torch.cat([ref_rows, pos_rows, neg_rows])]])
            b = ref_rows.numel()
            return infonce(emb[:b], emb[b : 2 * b], emb[2 * b :], temperature)

        with torch_seed(seed, dev):
            module = self._build_module()["module_"]
            module.standardize.set_(Xf)
            trainer = Trainer(module, loss_fn, **self._trainer_kwargs(seed))
            self.history_ = trainer.fit(anchors, split=(train_pos, val_pos))
        self.module_ = module.eval()
        self.best_epoch_ = int(trainer.best_epoch_)
        return self

    # ------------------------------------------------------------------ transform
    @torch.no_grad()
    def _embed(self, flat: _Flat) -> torch.Tensor:
        module = self._inference_module(flat.X.dtype)
        windows = SampleLayout(flat.shape, flat.X.device).windows(self.window)
        step = max(1, _CHUNK // self.window)
        with full_float32():
            outs = [module(flat.X[windows[i : i + step]])
                    for i in range(0, windows.shape[0], step)]
        return torch.cat(outs, 0)

    def transform(self, X):
        """Embeddings on the unit sphere.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
            2-D rows are consecutive time bins of one recording.

        Returns
        -------
        Z : same type as X, shape (n_samples, n_latents) or (trial, time, n_latents)
            Unit-norm rows; a DataArray keeps the trial and time coordinates.
        """
        self._check_fitted()
        flat = self._flatten(X, reset=False)
        return self._output(flat, self._embed(flat), "latent", np.arange(self.n_latents))
