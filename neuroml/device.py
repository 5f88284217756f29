"""Device resolution, array <-> tensor conversion, and the output-type round trip.

Every estimator converts at its boundary with these helpers: inputs (NumPy, xarray
``DataArray`` or torch tensor) become tensors on the estimator's device, and results go
back in the type they came in (NumPy -> NumPy; ``DataArray`` -> ``DataArray`` with the
sample coordinates kept and the feature dimension renamed; tensor -> tensor on the
estimator's device).
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from .errors import DeviceError, ParameterError

__all__ = [
    "resolve_device",
    "available_devices",
    "InputInfo",
    "inspect_input",
    "to_tensor",
    "to_numpy",
    "seed_from",
    "torch_seed",
    "full_float32",
]


def available_devices() -> list[str]:
    """Names of the devices torch can use here, e.g. ``['cpu', 'cuda:0']``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a ``device`` parameter into a ``torch.device`` that exists here.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        ``"auto"`` is the first CUDA GPU when there is one, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        A device was named that this machine does not have; the message lists the
        devices that do exist.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise ParameterError(
            "The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:N' or a "
            f"torch.device. Got {device!r} instead."
        )
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ParameterError(
            "The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:N' or a "
            f"torch.device. Got {device!r} instead."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was requested but CUDA is not available here; "
                f"available devices: {available_devices()}. Use device='auto' to fall back to the CPU."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device={device!r} does not exist; available devices: {available_devices()}."
            )
    elif dev.type == "mps" and "mps" not in available_devices():
        raise DeviceError(f"device={device!r} is not available; available devices: {available_devices()}.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device={device!r} is not supported; available devices: {available_devices()}.")
    return dev


@dataclass
class InputInfo:
    """What an input looked like, so outputs can be returned in the same type.

    Attributes
    ----------
    kind : {"numpy", "xarray", "torch"}
    dims : tuple of str
        Dimension names of a DataArray input (empty otherwise).
    coords : dict
        For a DataArray, the coordinates of every dimension except the last (the
        feature dimension), including non-index coordinates along those dimensions.
    device : torch.device or None
        Device of a tensor input.
    """

    kind: str
    dims: tuple = ()
    coords: dict = field(default_factory=dict)
    device: Any = None

    def wrap(self, values, feature_dim: str | None, feature_coords=None, *,
             estimator_device: torch.device | None = None, sample_dims: int | None = None,
             name: str | None = None):
        """Return ``values`` (tensor or array) in the input's type.

        Parameters
        ----------
        values : torch.Tensor or ndarray
            Output whose leading axes are the input's sample axes.
        feature_dim : str or None
            Name of the output's last dimension (``"component"``, ``"latent"``,
            ``"class"`` ...); None when the output has only the sample axes
            (e.g. ``predict``).
        feature_coords : array-like, default=None
            Coordinates of the feature dimension (e.g. class labels).
        estimator_device : torch.device, default=None
            Where tensor outputs go (the estimator's ``device_``).
        sample_dims : int, default=None
            How many leading input dimensions are sample dimensions; all but the last
            by default.
        name : str, default=None
            Name of a returned DataArray.
        """
        if self.kind == "torch":
            t = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
            return t.to(estimator_device) if estimator_device is not None else t
        arr = to_numpy(values)
        if self.kind == "numpy":
            return arr
        n_sample = len(self.dims) - 1 if sample_dims is None else sample_dims
        dims = list(self.dims[:n_sample])
        if feature_dim is not None:
            dims.append(feature_dim)
        extra = arr.ndim - len(dims)
        if extra > 0:  # unnamed trailing axes
            dims += [f"dim_{i}" for i in range(extra)]
        coords = {k: v for k, v in self.coords.items() if set(v[0] if isinstance(v, tuple) else (k,)) <= set(dims)}
        if feature_dim is not None and feature_coords is not None:
            coords[feature_dim] = np.asarray(feature_coords)
        return xr.DataArray(arr, dims=dims, coords=coords, name=name)


def inspect_input(X) -> InputInfo:
    """Record the type, dims and sample coordinates of an input."""
    if isinstance(X, torch.Tensor):
        return InputInfo("torch", device=X.device)
    if isinstance(X, xr.DataArray):
        feature = X.dims[-1]
        coords = {}
        for name, c in X.coords.items():
            if feature in c.dims:
                continue
            coords[name] = (c.dims, c.values) if name not in X.dims else (c.dims, c.values)
        return InputInfo("xarray", dims=tuple(X.dims), coords=coords)
    return InputInfo("numpy")


def to_numpy(values) -> np.ndarray:
    """A NumPy array from a tensor (moved to the CPU), DataArray or array-like."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    if isinstance(values, xr.DataArray):
        return np.asarray(values.values)
    return np.asarray(values)


def to_tensor(X, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor on ``device`` without a copy when ``X`` is already there in ``dtype``."""
    if isinstance(X, torch.Tensor):
        return X.to(device=device, dtype=dtype or X.dtype)
    arr = to_numpy(X)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy() if not arr.flags.writeable else np.ascontiguousarray(arr)
    t = torch.from_numpy(arr)
    return t.to(device=device, dtype=dtype or t.dtype, non_blocking=True)


def seed_from(random_state) -> int:
    """An int seed from a ``random_state`` parameter (None draws a fresh one).

    Parameters
    ----------
    random_state : int, numpy RandomState/Generator or None
    """
    if random_state is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) % (2**63)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ParameterError(
        "The 'random_state' parameter must be an int, a numpy RandomState/Generator or None. "
        f"Got {random_state!r} instead."
    )


@contextlib.contextmanager
def torch_seed(seed: int, device: torch.device | None = None):
    """Run a block with torch's global RNG seeded, restoring the caller's RNG afterwards.

    Module initialisation and dropout draw from torch's global generator; seeding it
    inside ``torch.random.fork_rng`` makes a fit reproducible without changing the
    random state the user's own code sees.
    """
    devices = []
    if device is not None and device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, enabled=True):
        # Seed only the generators that are forked (and so restored afterwards):
        # torch.manual_seed would also reseed every CUDA device for good.
        torch.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


@contextlib.contextmanager
def full_float32():
    """Run a block with TF32 off for matrix products and cuDNN convolutions.

    On Ampere and later GPUs torch may round float32 matrix products and convolutions
    to TF32 (10-bit mantissa) for speed; neuroml trains and infers in full float32 (or
    float64) on every device, so that a GPU gives the CPU's results within float32
    rounding. Both switches are restored afterwards, so the caller's own code keeps
    its settings.
    """
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn
