"""The torch modules behind the representation estimators (plain ``nn.Module`` s).

The estimators own the parameters and the data handling; these modules only map
tensors to tensors, so a fitted estimator can rebuild them from its fitted attributes
(``_build_module``) when it is loaded.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "make_mlp",
    "Standardize",
    "AutoencoderNet",
    "VAENet",
    "WindowEncoder",
]

#: Activation names accepted by the ``activation`` parameter.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def make_mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    """``Linear -> activation`` for each hidden size, then a linear output layer."""
    layers: list[nn.Module] = []
    prev = n_in
    for h in hidden:
        layers += [nn.Linear(prev, int(h)), ACTIVATIONS[activation]()]
        prev = int(h)
    layers.append(nn.Linear(prev, n_out))
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """``(x - mean) / scale`` with the training data's statistics kept as buffers."""

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    @torch.no_grad()
    def set_(self, X: torch.Tensor) -> None:
        """Set the statistics from training data ``X`` (constant features get scale 1)."""
        self.mean.copy_(X.mean(0))
        std = X.std(0, correction=0)
        self.scale.copy_(torch.where(std > 1e-8 * (1 + self.mean.abs()), std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class AutoencoderNet(nn.Module):
    """Encoder ``(n, n_features) -> (n, n_latents)`` and a mirrored decoder.

    The decoder's output is the reconstruction itself for a mean-squared-error loss
    and the log firing rate for a Poisson loss.
    """

    def __init__(self, n_features: int, n_latents: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.standardize = Standardize(n_features)
        self.encoder = make_mlp(n_features, tuple(hidden), n_latents, activation)
        self.decoder = make_mlp(n_latents, tuple(reversed(hidden)), n_features, activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.standardize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))


class VAENet(nn.Module):
    """Gaussian posterior ``q(z|x) = N(mu(x), diag(exp(logvar(x))))`` and a decoder.

    The decoder gives the mean of a Gaussian likelihood (with a learned per-feature
    log standard deviation, ``log_scale``) or the log rate of a Poisson likelihood.
    """

    def __init__(self, n_features: int, n_latents: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.n_latents = n_latents
        self.standardize = Standardize(n_features)
        self.encoder = make_mlp(n_features, tuple(hidden), 2 * n_latents, activation)
        self.decoder = make_mlp(n_latents, tuple(reversed(hidden)), n_features, activation)
        self.log_scale = nn.Parameter(torch.zeros(n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.standardize(x))
        mu, logvar = h[:, : self.n_latents], h[:, self.n_latents :]
        return mu, logvar.clamp(-15.0, 15.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x)[0])


class WindowEncoder(nn.Module):
    """A 1-D convolution over ``window`` time bins, an MLP, and a unit-norm output.

    Input ``(n, window, n_features)``: the activity of each sample's window of bins;
    output ``(n, n_latents)`` on the unit sphere.
    """

    def __init__(self, n_features: int, n_latents: int, window: int,
                 hidden: tuple[int, ...], activation: str):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        first = hidden[0] if hidden else n_latents
        self.standardize = Standardize(n_features)
        self.conv = nn.Conv1d(n_features, first, kernel_size=window)
        if hidden:
            self.head = nn.Sequential(ACTIVATIONS[activation](),
                                      make_mlp(first, hidden[1:], n_latents, activation))
        else:
            self.head = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.standardize(x).transpose(1, 2)).squeeze(-1)
        return nn.functional.normalize(self.head(h), dim=-1)
