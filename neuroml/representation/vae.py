"""Variational autoencoder with a Gaussian or Poisson likelihood (beta-VAE)."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch

from .._validation import Interval, Options, check_param
from ..device import seed_from, to_numpy, to_tensor, torch_seed
from ..training import TRAINING_CONSTRAINTS, Trainer
from ._base import _RepresentationBase, check_latents
from ._networks import ACTIVATIONS, VAENet
from .autoencoder import check_counts

__all__ = ["VAE"]

_LOG_2PI = math.log(2.0 * math.pi)


def negative_log_likelihood(module: VAENet, out: torch.Tensor, x: torch.Tensor,
                            likelihood: str) -> torch.Tensor:
    """``-log p(x | z)`` per sample (summed over features), normalising constants included."""
    if likelihood == "gaussian":
        log_scale = module.log_scale
        return 0.5 * (_LOG_2PI + 2.0 * log_scale + (x - out).square() * (-2.0 * log_scale).exp()).sum(-1)
    return (out.exp() - x * out + torch.lgamma(x + 1.0)).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per sample."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)


def elbo_terms(module: VAENet, x: torch.Tensor, likelihood: str, generator=None):
    """One-sample reparameterised estimate of the reconstruction and KL terms per sample."""
    mu, logvar = module.encode(x)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + (0.5 * logvar).exp() * eps
    return negative_log_likelihood(module, module.decoder(z), x, likelihood), \
        kl_to_standard_normal(mu, logvar)


class VAE(_RepresentationBase):
    """Variational autoencoder of neural activity (beta-VAE).

    The encoder gives a Gaussian posterior ``q(z | x) = N(mu(x), diag(sigma(x)**2))``
    over ``n_latents`` latents; the decoder gives the likelihood ``p(x | z)``: Gaussian
    with a learned per-feature standard deviation (continuous signals) or Poisson with
    a log link (spike counts). Training maximises the evidence lower bound with the KL
    term scaled by ``beta`` (Kingma & Welling 2014; Higgins et al. 2017)::

        loss = E_q[-log p(x | z)] + beta * KL(q(z | x) || N(0, I))

    estimated with one reparameterised sample per data point. Inputs are standardised
    per feature before the encoder. Trained by :class:`neuroml.training.Trainer`; the
    history keeps the two terms apart (``train_recon``, ``train_kl``, ``val_recon``,
    ``val_kl``).

    Parameters
    ----------
    n_latents : int, default=2
        Dimension of the latent space (>= 1).
    beta : float, default=1.0
        Weight of the KL term (>= 0); 1 is the ELBO, > 1 a beta-VAE.
    likelihood : {"gaussian", "poisson"}, default="gaussian"
        Observation model. "poisson" requires non-negative input (counts).
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden layer widths of the encoder; the decoder mirrors them.
    activation : {"relu", "gelu", "tanh", "elu", "softplus", "identity"}, default="tanh"
        Nonlinearity after each hidden layer (see :class:`Autoencoder`).
    max_epochs : int, default=200
    batch_size : int, default=256
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    validation_fraction : float, default=0.1
        Held out for early stopping; whole trials for ``(trial, time, unit)`` input.
    patience : int or None, default=10
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds initialisation, the reparameterisation noise, the split and the batches.

    Attributes
    ----------
    module_ : VAENet
        Encoder (posterior mean and log-variance), decoder, Gaussian ``log_scale``.
    history_ : pandas.DataFrame
        ``epoch``, ``train_loss``, ``val_loss``, ``train_recon``, ``train_kl``,
        ``val_recon``, ``val_kl``, ``seconds``; ``-(recon + kl)`` is the ELBO per sample.
    best_epoch_ : int
    latent_mean_ : ndarray of shape (n_latents,)
        Mean of the posterior means over the training data.
    latent_std_ : ndarray of shape (n_latents,)
    feature_dim_ : str
    feature_coords_ : ndarray or None
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.representation import VAE
    >>> rng = np.random.default_rng(0)
    >>> counts = rng.poisson(3.0, size=(300, 12))
    >>> vae = VAE(2, likelihood="poisson", max_epochs=5, random_state=0).fit(counts)
    >>> vae.transform(counts).shape, vae.sample(4, random_state=0).shape
    ((300, 2), (4, 12))
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_latents": [Interval(Integral, 1, None)],
        "beta": [Interval(Real, 0, None)],
        "likelihood": [Options(("gaussian", "poisson"))],
        "hidden_layer_sizes": [tuple, list],
        "activation": [Options(tuple(ACTIVATIONS))],
        "weight_decay": [Interval(Real, 0, None)],
        "device": ["device"],
        "random_state": ["random_state"],
        **TRAINING_CONSTRAINTS,
    }
    _test_params: ClassVar[dict] = {"max_epochs": 3, "hidden_layer_sizes": (8,), "batch_size": 64}

    def __init__(self, n_latents=2, *, beta=1.0, likelihood="gaussian", hidden_layer_sizes=(64,),
                 activation="tanh", max_epochs=200, batch_size=256, lr=1e-3, weight_decay=0.0,
                 optimizer="adam", validation_fraction=0.1, patience=10, verbose=False,
                 device="auto", random_state=None):
        self.n_latents = n_latents
        self.beta = beta
        self.likelihood = likelihood
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
        module = VAENet(self.n_features_in_, self.n_latents, tuple(self.hidden_layer_sizes),
                        self.activation)
        return {"module_": module.to(self.device_)}

    def fit(self, X, y=None):
        """Train the VAE.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
        y : ignored

        Returns
        -------
        self : VAE
        """
        self._validate_params()
        self._check_hidden()
        self._resolve_device()
        flat = self._flatten(X, reset=True)
        if self.likelihood == "poisson":
            check_counts(flat.X, type(self).__name__, "likelihood")
        Xf = flat.X.float()
        seed = seed_from(self.random_state)
        likelihood, beta = self.likelihood, float(self.beta)

        def loss_fn(module, xb):
            recon, kl = elbo_terms(module, xb, likelihood)
            recon, kl = recon.mean(), kl.mean()
            return recon + beta * kl, {"recon": recon, "kl": kl}

        with torch_seed(seed, self.device_):
            module = self._build_module()["module_"]
            module.standardize.set_(Xf)
            with torch.no_grad():
                mean = Xf.mean(0)
                if likelihood == "poisson":
                    module.decoder[-1].bias.copy_(mean.clamp_min(1e-3).log())
                else:
                    module.decoder[-1].bias.copy_(mean)
                    module.log_scale.copy_(Xf.std(0, correction=0).clamp_min(1e-3).log())
            trainer = Trainer(module, loss_fn, **self._trainer_kwargs(seed))
            self.history_ = trainer.fit(Xf, split=self._trial_split(flat.shape, seed))
        self._store_fitted(module, trainer, Xf, lambda m, x: m.encode(x)[0])
        return self

    def transform(self, X):
        """Posterior means ``E[z | x]``.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)

        Returns
        -------
        Z : same type as X, shape (n_samples, n_latents) or (trial, time, n_latents)
        """
        self._check_fitted()
        flat = self._flatten(X, reset=False)
        Z = self._apply(lambda m, x: m.encode(x)[0], flat.X)
        return self._output(flat, Z, "latent", np.arange(self.n_latents))

    def _decode(self, m, z):
        out = m.decoder(z)
        return out.exp() if self.likelihood == "poisson" else out

    def inverse_transform(self, X):
        """Expected observations given latents: Poisson rates or Gaussian means.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_latents) or (trial, time, n_latents)

        Returns
        -------
        X_mean : same type as X, shape (..., n_features_in_)
        """
        self._check_fitted()
        Zt, info, lead = check_latents(self, X, f"{type(self).__name__}.inverse_transform")
        out = self._apply(self._decode, Zt).reshape(*lead, -1)
        return self._wrap(info, out, self.feature_dim_, self.feature_coords_, device=self.device_)

    def sample(self, n_samples=1, *, random_state=None):
        """Draw new data from the generative model: ``z ~ N(0, I)``, ``x ~ p(x | z)``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState, Generator or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Poisson counts or Gaussian samples (float64).
        """
        self._check_fitted()
        check_param("n_samples", n_samples, [Interval(Integral, 1, None)], "VAE.sample")
        rng = np.random.default_rng(seed_from(random_state))
        z = rng.standard_normal((n_samples, self.n_latents))
        mean = to_numpy(self._apply(self._decode, to_tensor(z, self.device_)))
        if self.likelihood == "poisson":
            return rng.poisson(mean).astype(np.float64)
        scale = to_numpy(self.module_.log_scale.detach().double().exp())
        return mean + scale * rng.standard_normal(mean.shape)

    def score(self, X, y=None, *, n_draws=8):
        """Mean evidence lower bound per sample (beta = 1), in nats.

        ``E_q[log p(x | z)] - KL(q(z | x) || N(0, I))`` estimated with ``n_draws``
        reparameterised samples per data point from a fixed seed, so the same data
        gives the same score.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features) or (trial, time, unit)
        y : ignored
        n_draws : int, default=8

        Returns
        -------
        elbo : float
        """
        self._check_fitted()
        check_param("n_draws", n_draws, [Interval(Integral, 1, None)], "VAE.score")
        flat = self._flatten(X, reset=False)
        if self.likelihood == "poisson":
            check_counts(flat.X, type(self).__name__, "likelihood")
        gen = torch.Generator(device=self.device_).manual_seed(0)
        likelihood = self.likelihood

        def elbo(m, x):
            total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for _ in range(n_draws):
                recon, kl = elbo_terms(m, x, likelihood, generator=gen)
                total = total - recon - kl
            return (total / n_draws)[:, None]

        return float(self._apply(elbo, flat.X).mean())
