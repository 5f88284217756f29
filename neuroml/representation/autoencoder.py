"""Autoencoder: a nonlinear (or linear) encoder/decoder pair trained to reconstruct activity."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch

from .._validation import Interval, Options
from ..device import seed_from, torch_seed
from ..errors import ParameterError
from ..training import TRAINING_CONSTRAINTS, Trainer
from ._base import _RepresentationBase, check_latents
from ._networks import ACTIVATIONS, AutoencoderNet

__all__ = ["Autoencoder"]


def reconstruction_loss(output: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample reconstruction loss, averaged over features.

    ``"mse"``: squared error of the decoder output. ``"poisson"``: Poisson deviance
    ``2 (x log(x / mu) - x + mu)`` with ``mu = exp(output)`` (the decoder gives the log
    rate), as in :func:`sklearn.metrics.mean_poisson_deviance`.
    """
    if loss == "mse":
        return (output - x).square().mean(-1)
    return 2.0 * (torch.xlogy(x, x) - x * output - x + output.exp()).mean(-1)


def check_counts(X: torch.Tensor, owner: str, param: str) -> None:
    """Poisson models need non-negative data; say which parameter asked for it."""
    if bool((X < 0).any()):
        raise ParameterError(
            f"Negative values in data passed to {owner}: {param}='poisson' models "
            f"non-negative counts or rates (min value {float(X.min()):.4g}). Use the "
            "Gaussian / 'mse' setting for signed signals."
        )


class Autoencoder(_RepresentationBase):
    """Autoencoder of neural activity: latents that reconstruct the population.

    An encoder network maps each sample (a time bin of ``n_features`` units) to
    ``n_latents`` numbers and a mirrored decoder maps them back. With
    ``hidden_layer_sizes=()`` and ``activation="identity"`` both are affine maps and the
    mean-squared-error optimum spans the same subspace as PCA's first ``n_latents``
    components (Baldi & Hornik 1989). Inputs are standardised per feature before the
    encoder (the statistics are kept in the module); the decoder reconstructs the raw
    input. Trained by :class:`neuroml.training.Trainer`.

    Parameters
    ----------
    n_latents : int, default=2
        Dimension of the latent space (>= 1).
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden layer widths of the encoder; the decoder mirrors them. ``()`` gives a
        linear (affine) autoencoder.
    activation : {"relu", "gelu", "tanh", "elu", "softplus", "identity"}, default="tanh"
        Nonlinearity after each hidden layer. Smooth, saturating tanh gave latents
        closest to a linear map of the generating latents in our tests (ReLU networks
        more often learn a warped parametrisation).
    loss : {"mse", "poisson"}, default="mse"
        ``"mse"``: squared error (continuous signals). ``"poisson"``: Poisson deviance
        with a log link (spike counts; the decoder gives log rates and
        :meth:`inverse_transform` returns rates). Requires non-negative input.
    max_epochs : int, default=200
    batch_size : int, default=256
    lr : float, default=1e-3
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    validation_fraction : float, default=0.1
        Held out for early stopping; for ``(trial, time, unit)`` input whole trials are
        held out.
    patience : int or None, default=10
        Epochs without improvement before stopping; None trains ``max_epochs``.
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
        "auto" is the GPU when there is one, else the CPU.
    random_state : int, RandomState, Generator or None, default=None
        Seeds initialisation, the validation split and the minibatch order.

    Attributes
    ----------
    module_ : AutoencoderNet
        The fitted torch module (encoder, decoder and the input standardisation).
    history_ : pandas.DataFrame
        Per-epoch ``epoch``, ``train_loss``, ``val_loss``, ``seconds``.
    best_epoch_ : int
        Epoch whose weights were kept.
    latent_mean_ : ndarray of shape (n_latents,)
        Mean of the training latents (the default centre of
        :func:`~neuroml.representation.latent_traversal`).
    latent_std_ : ndarray of shape (n_latents,)
        Standard deviation of the training latents.
    feature_dim_ : str
        Name of the input's feature dimension ("feature" unless fitted on a DataArray).
    feature_coords_ : ndarray or None
        Labels of the input features (DataArray coordinates), if any.
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.representation import Autoencoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 10))
    >>> ae = Autoencoder(2, hidden_layer_sizes=(), activation="identity", max_epochs=5,
    ...                  random_state=0).fit(X)
    >>> ae.transform(X).shape
    (200, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_latents": [Interval(Integral, 1, None)],
        "hidden_layer_sizes": [tuple, list],
        "activation": [Options(tuple(ACTIVATIONS))],
        "loss": [Options(("mse", "poisson"))],
        "weight_decay": [Interval(Real, 0, None)],
        "device": ["device"],
        "random_state": ["random_state"],
        **TRAINING_CONSTRAINTS,
    }
    _test_params: ClassVar[dict] = {"max_epochs": 3, "hidden_layer_sizes": (8,), "batch_size": 64}

    def __init__(self, n_latents=2, *, hidden_layer_sizes=(64,), activation="tanh", loss="mse",
                 max_epochs=200, batch_size=256, lr=1e-3, weight_decay=0.0, optimizer="adam",
                 validation_fraction=0.1, patience=10, verbose=False, device="auto",
                 random_state=None):
        self.n_latents = n_latents
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
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
        module = AutoencoderNet(self.n_features_in_, self.n_latents,
                                tuple(self.hidden_layer_sizes), self.activation)
        return {"module_": module.to(self.device_)}

    def fit(self, X, y=None):
        """Train the autoencoder.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
            Activity; trial input is flattened to one sample per time bin.
        y : ignored

        Returns
        -------
        self : Autoencoder
        """
        self._validate_params()
        self._check_hidden()
        self._resolve_device()
        flat = self._flatten(X, reset=True)
        if self.loss == "poisson":
            check_counts(flat.X, type(self).__name__, "loss")
        Xf = flat.X.float()
        seed = seed_from(self.random_state)
        loss = self.loss

        def loss_fn(module, xb):
            return reconstruction_loss(module(xb), xb, loss).mean()

        with torch_seed(seed, self.device_):
            module = self._build_module()["module_"]
            module.standardize.set_(Xf)
            out_bias = module.decoder[-1].bias
            with torch.no_grad():
                mean = Xf.mean(0)
                out_bias.copy_(mean.clamp_min(1e-3).log() if loss == "poisson" else mean)
            trainer = Trainer(module, loss_fn, **self._trainer_kwargs(seed))
            self.history_ = trainer.fit(Xf, split=self._trial_split(flat.shape, seed))
        self._store_fitted(module, trainer, Xf, lambda m, x: m.encode(x))
        return self

    def transform(self, X):
        """Latents of ``X``.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)

        Returns
        -------
        Z : same type as X, shape (n_samples, n_latents) or (trial, time, n_latents)
            A DataArray keeps the sample coordinates (trial, time, condition ...) and
            names the last dimension ``latent``.
        """
        self._check_fitted()
        flat = self._flatten(X, reset=False)
        Z = self._apply(lambda m, x: m.encode(x), flat.X)
        return self._output(flat, Z, "latent", np.arange(self.n_latents))

    def _decode(self, m, z):
        out = m.decoder(z)
        return out.exp() if self.loss == "poisson" else out

    def inverse_transform(self, X):
        """Reconstruction from latents (rates for ``loss="poisson"``).

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_latents) or (trial, time, n_latents)
            Latents, e.g. from :meth:`transform`.

        Returns
        -------
        X_rec : same type as X, shape (..., n_features_in_)
            A DataArray gets the training input's feature dimension and labels.
        """
        self._check_fitted()
        Zt, info, lead = check_latents(self, X, f"{type(self).__name__}.inverse_transform")
        out = self._apply(self._decode, Zt).reshape(*lead, -1)
        return self._wrap(info, out, self.feature_dim_, self.feature_coords_, device=self.device_)

    def score(self, X, y=None):
        """Negative mean reconstruction loss (higher is better).

        ``-mean_squared_error(X, X_rec)`` for ``loss="mse"``;
        ``-mean_poisson_deviance(X, rates)`` for ``loss="poisson"`` (over all entries).

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
        y : ignored

        Returns
        -------
        score : float
        """
        self._check_fitted()
        flat = self._flatten(X, reset=False)
        if self.loss == "poisson":
            check_counts(flat.X, type(self).__name__, "loss")
        loss = self.loss
        per_sample = self._apply(lambda m, x: reconstruction_loss(m(x), x, loss)[:, None], flat.X)
        return -float(per_sample.mean())
