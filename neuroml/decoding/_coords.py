"""Trial coordinates of a DataArray named by a string (``y="condition"``).

Shared by :func:`neuroml.decoding.permutation_test` and
:class:`neuroml.decoding.TimeResolvedDecoder`, which both accept ``y`` and ``groups``
as the name of a coordinate along the first (trial) dimension of ``X``.
"""

from __future__ import annotations

import xarray as xr

from ..errors import ParameterError

__all__ = ["coordinate"]


def coordinate(X, value, name):
    """Resolve a str naming a trial coordinate of a DataArray ``X`` into its values.

    Parameters
    ----------
    X : xarray.DataArray or array-like
        The data; its first dimension is the trials (samples).
    value : str or any
        A coordinate name along ``X``'s first dimension, or anything else, which is
        returned unchanged.
    name : str
        The parameter's name, for error messages (``"y"``, ``"groups"``).

    Returns
    -------
    values : ndarray of shape (n_trials,) or ``value`` unchanged

    Raises
    ------
    ParameterError
        ``value`` is a str but ``X`` is not a DataArray, or it names no coordinate
        along the first dimension (the message lists those there are).
    """
    if not isinstance(value, str):
        return value
    if not isinstance(X, xr.DataArray):
        raise ParameterError(
            f"{name}={value!r} names a coordinate, which needs a DataArray X; got "
            f"{type(X).__name__}.")
    sample_dim = X.dims[0]
    if value not in X.coords or X.coords[value].dims != (sample_dim,):
        options = [c for c in X.coords if X.coords[c].dims == (sample_dim,) and c != sample_dim]
        raise ParameterError(
            f"{name}={value!r} is not a coordinate along {sample_dim!r}; available: {options}.")
    return X.coords[value].values
