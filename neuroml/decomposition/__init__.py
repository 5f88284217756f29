"""Decomposition: principal component analysis and relatives."""

from .pca import PCA

__all__ = ["PCA"]
