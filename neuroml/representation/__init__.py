"""Representation learning: autoencoders, VAEs and contrastive embeddings of activity.

- :class:`Autoencoder` — encoder/decoder networks trained to reconstruct activity
  (mean squared error or Poisson deviance); linear with MSE it recovers PCA's subspace.
- :class:`VAE` — variational autoencoder (beta-VAE) with a Gaussian or Poisson likelihood.
- :class:`ContrastiveEmbedding` — InfoNCE embeddings on the unit sphere with positives
  chosen by time offset (self-supervised) or behaviour (labels or continuous), as in CEBRA.
- :func:`latent_traversal` — decoded outputs along latent axes.
- :func:`consistency_score` — R² of the best linear map between embeddings (CEBRA).

All estimators take ``(n_samples, n_features)`` or trial-structured ``(trial, time, unit)``
input and return latents in the input's type (DataArrays keep trial and time coordinates).
"""

from .autoencoder import Autoencoder
from .contrastive import ContrastiveEmbedding
from .latents import consistency_score, latent_traversal
from .vae import VAE

__all__ = ["Autoencoder", "VAE", "ContrastiveEmbedding", "latent_traversal", "consistency_score"]
