"""The torch parts of :class:`neuroml.nn.ConvEncodingModel`: a convolutional core shared by
all neurons, a per-neuron readout (factorized or Gaussian) and the output nonlinearity.

The design follows sinzlab's neuralpredictors (``Stacked2dCore``; ``FullFactorized2d`` /
``SpatialXFeatureLinear``; ``FullGaussian2d``) and MouseLand's minimodels (Du et al.
2025): convolution -> batch normalisation -> ELU layers with "same" padding, a Laplacian
smoothness penalty on the first layer's kernels, L1 penalties on the readout, and an
``ELU + 1`` output for Poisson responses; the learning rate is lowered on plateaus of the
loss (``Trainer(lr_decay=0.3)``, as the SENSORIUM baselines train).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvCore", "FactorizedReadout", "GaussianReadout", "EncodingNetwork",
           "inverse_elu1", "location_map"]

#: The 3 x 3 discrete Laplacian used by the smoothness penalty.
_LAPLACIAN = ((0.0, -1.0, 0.0), (-1.0, 4.0, -1.0), (0.0, -1.0, 0.0))


class ConvCore(nn.Module):
    """Stacked 2-D convolutions shared by all neurons.

    Each layer is ``Conv2d`` ("same" padding, no bias) -> ``BatchNorm2d`` -> ``ELU``, so
    the feature maps have the image's height and width.

    Parameters
    ----------
    in_channels : int
    channels : tuple of int
        Output channels of each layer.
    kernel_sizes : tuple of int
        Kernel size of each layer (same length as ``channels``).
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], kernel_sizes: tuple[int, ...]):
        super().__init__()
        layers = []
        for c_in, c_out, k in zip((in_channels, *channels[:-1]), channels, kernel_sizes):
            layers.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, k, padding="same", bias=False),
                nn.BatchNorm2d(c_out),
                nn.ELU(),
            ))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:
            nn.init.xavier_normal_(layer[0].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def smoothness(self) -> torch.Tensor:
        """Laplacian smoothness of the first layer's kernels (scale-free).

        ``mean_k ||L * w_k||^2 / ||w_k||^2`` over the kernels ``w_k`` (one per input x
        output channel), where ``L *`` is the 3 x 3 discrete Laplacian with zero padding:
        neuralpredictors' ``LaplaceL2norm``. Batch normalisation follows the convolution,
        so only the shape of a kernel matters, not its scale.
        """
        w = self.layers[0][0].weight
        k = w.reshape(-1, 1, *w.shape[-2:])
        lap = torch.tensor(_LAPLACIAN, dtype=w.dtype, device=w.device)[None, None]
        rough = F.conv2d(k, lap, padding=1).pow(2).sum(dim=(1, 2, 3))
        return (rough / (k.pow(2).sum(dim=(1, 2, 3)) + 1e-12)).mean()


class FactorizedReadout(nn.Module):
    """Per-neuron readout factorised into a spatial mask and channel weights.

    ``r_n = sum_{c,y,x} m_n[y, x] w_n[c] F[c, y, x] + b_n`` with the mask normalised to
    unit L2 norm (its scale lives in ``w_n``): neuralpredictors' ``FullFactorized2d``
    (``SpatialXFeatureLinear``, Klindt et al. 2017).

    Parameters
    ----------
    n_neurons, channels, height, width : int
    """

    def __init__(self, n_neurons: int, channels: int, height: int, width: int):
        super().__init__()
        self.spatial = nn.Parameter(torch.randn(n_neurons, height, width) * 1e-2)
        self.features = nn.Parameter(torch.randn(n_neurons, channels) * 1e-2)
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    @torch.no_grad()
    def initialise(self, location_map: torch.Tensor) -> None:
        """Start each mask as its :func:`location_map` (plus the initial noise)."""
        peak = location_map.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        self.spatial.add_(location_map / peak * 0.1)

    def mask(self) -> torch.Tensor:
        """Spatial masks ``(neuron, height, width)`` of unit L2 norm."""
        s = self.spatial
        return s / (s.pow(2).sum(dim=(1, 2), keepdim=True).sqrt() + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pooled = x.reshape(n, c, h * w) @ self.mask().reshape(-1, h * w).T  # (n, c, neuron)
        return (pooled * self.features.T[None]).sum(dim=1) + self.bias

    def l1(self) -> torch.Tensor:
        """Mean over neurons of ``||m_n||_1 ||w_n||_1`` (neuralpredictors' readout L1)."""
        return (self.mask().abs().sum(dim=(1, 2)) * self.features.abs().sum(dim=1)).mean()


class GaussianReadout(nn.Module):
    """Per-neuron readout of the feature vector at one learned position.

    Each neuron reads the core's channels at the position ``mu_n`` (in ``[-1, 1]``
    coordinates of the feature map, bilinear interpolation) with weights ``w_n``. During
    training the position is drawn from ``N(mu_n, diag(sigma_n**2))`` for every image,
    which lets the gradient find the receptive field's location; in eval mode it is
    ``mu_n``: neuralpredictors' ``FullGaussian2d`` (Lurz et al. 2021) with an
    axis-aligned Gaussian.

    Parameters
    ----------
    n_neurons, channels : int
    init_sigma : float, default=0.1
    """

    def __init__(self, n_neurons: int, channels: int, init_sigma: float = 0.1):
        super().__init__()
        self.mu = nn.Parameter(torch.rand(n_neurons, 2) * 0.2 - 0.1)
        self.sigma = nn.Parameter(torch.full((n_neurons, 2), float(init_sigma)))
        self.features = nn.Parameter(torch.full((n_neurons, channels), 1.0 / channels))
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    @torch.no_grad()
    def initialise(self, location_map: torch.Tensor) -> None:
        """Start each ``mu_n`` at the peak of its :func:`location_map`."""
        _, h, w = location_map.shape
        peak = location_map.reshape(len(location_map), -1).argmax(dim=1)
        to_grid = lambda i, size: 2 * i.to(self.mu.dtype) / max(size - 1, 1) - 1  # noqa: E731
        self.mu.copy_(torch.stack([to_grid(peak % w, w), to_grid(peak // w, h)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        mu = self.mu.clamp(-1, 1)
        if self.training:
            noise = torch.randn(n, *mu.shape, dtype=x.dtype, device=x.device)
            grid = (mu + noise * self.sigma.abs()).clamp(-1, 1)
        else:
            grid = mu.expand(n, *mu.shape)
        # grid_sample wants (n, out_h, out_w, 2) with (x, y) order: one "row" of neurons
        sampled = F.grid_sample(x, grid[:, :, None, :], align_corners=True)  # (n, c, neuron, 1)
        return (sampled[..., 0] * self.features.T[None]).sum(dim=1) + self.bias

    def l1(self) -> torch.Tensor:
        """Mean over neurons of ``||w_n||_1`` (neuralpredictors' feature L1)."""
        return self.features.abs().sum(dim=1).mean()


class EncodingNetwork(nn.Module):
    """Core -> readout -> output nonlinearity (``ELU + 1`` for Poisson, identity for MSE).

    Parameters
    ----------
    in_channels : int
    image_shape : (height, width)
    n_neurons : int
    channels, kernel_sizes : tuple of int
    readout : {"factorized", "gaussian"}
    positive : bool
        Apply ``ELU(z) + 1`` (strictly positive rates, for the Poisson loss).
    """

    def __init__(self, in_channels: int, image_shape: tuple[int, int], n_neurons: int,
                 channels: tuple[int, ...], kernel_sizes: tuple[int, ...], readout: str,
                 positive: bool):
        super().__init__()
        self.core = ConvCore(in_channels, channels, kernel_sizes)
        if readout == "factorized":
            self.readout = FactorizedReadout(n_neurons, channels[-1], *image_shape)
        else:
            self.readout = GaussianReadout(n_neurons, channels[-1])
        self.positive = positive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.readout(self.core(x))
        return F.elu(z) + 1.0 if self.positive else z


@torch.no_grad()
def location_map(images: torch.Tensor, responses: torch.Tensor,
                 max_images: int = 10_000) -> torch.Tensor:
    """Where each neuron's response is predicted by the image, linearly or not.

    Over (at most ``max_images``) images: the correlation of each neuron's response with
    each pixel (the spike-triggered average, which peaks over a simple cell's receptive
    field), and with each pixel's local contrast energy (its square averaged over 3 x 3,
    which peaks over a complex cell's). The map is ``box(sta**2) + max(energy, 0)**2``
    (``box``: 3 x 3 average; summed over channels); both terms are squared correlations,
    so neither swamps the other. Readouts start from it, which spares the gradient a
    search over the image (minimodels start theirs at a fitted Gabor's centre for the
    same reason).

    Parameters
    ----------
    images : tensor of shape (n, channel, height, width), standardised
    responses : tensor of shape (n, neuron)
    max_images : int, default=10000

    Returns
    -------
    tensor of shape (neuron, height, width), >= 0
    """
    images, responses = images[:max_images], responses[:max_images]
    n, c, h, w = images.shape
    box = lambda t: F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)  # noqa: E731
    y = _zscore(responses)
    sta = (y.T @ _zscore(images.reshape(n, -1)) / n).reshape(-1, c, h, w)
    energy = y.T @ _zscore(box(images.pow(2)).sum(dim=1).reshape(n, -1)) / n
    return box(sta.pow(2)).sum(dim=1) + energy.clamp_min(0).pow(2).reshape(-1, h, w)


def _zscore(t: torch.Tensor) -> torch.Tensor:
    """Columns of ``t`` with zero mean and unit s.d. (constant columns stay zero)."""
    t = t - t.mean(dim=0)
    return t / t.pow(2).mean(dim=0).sqrt().clamp_min(1e-12)


def inverse_elu1(y: torch.Tensor) -> torch.Tensor:
    """The ``z`` with ``ELU(z) + 1 = y`` (``y > 0``): ``y - 1`` for ``y >= 1``, else ``log y``."""
    return torch.where(y >= 1, y - 1, torch.log(y.clamp_min(1e-3)))
