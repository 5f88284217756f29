"""Parameter constraints declared as data and checked with one message shape.

Estimators and functions declare ``_parameter_constraints = {"name": [constraint, ...]}``
and call :func:`validate_params` when work starts. A value passes when it satisfies any
one constraint in its list. The error reads like scikit-learn's::

    The 'bin_size' parameter of SpikeTrains.bin must be a float in the range (0, inf).
    Got -1 instead.

A constraint is one of:

- :class:`Interval` (a number in a range), :class:`Options` (one of a fixed set),
- a type (``int``, ``str``, ``dict`` ...), ``None`` (the value ``None``),
- the strings ``"boolean"``, ``"random_state"``, ``"array-like"``, ``"callable"``,
  ``"device"``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .device import to_numpy
from .errors import ParameterError

__all__ = ["Interval", "Options", "validate_params", "check_param", "check_same_index",
           "check_vector", "plain"]


@dataclass(frozen=True)
class Interval:
    """A real or integer number in ``[left, right]`` (bounds may be open or ``None``).

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        ``numbers.Integral`` accepts integers only; ``numbers.Real`` accepts ints and floats.
    left, right : float or None
        Bounds; ``None`` is unbounded.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds are included.
    """

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        if self.kind is numbers.Integral:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real):
            return False
        if isinstance(value, numbers.Real) and np.isnan(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return bool(lo_ok and hi_ok)

    def __str__(self) -> str:
        name = "an int" if self.kind is numbers.Integral else "a float"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        return f"{name} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``)."""

    values: tuple

    def __init__(self, values: Iterable):
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value: Any) -> bool:
        try:
            return any(value == v and type(value) is type(v) or value is v for v in self.values)
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return "a str among {" + ", ".join(repr(v) for v in self.values) + "}"


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, Interval | Options):
        return constraint.accepts(value)
    if constraint == "boolean":
        return isinstance(value, bool | np.bool_)
    if constraint == "random_state":
        return value is None or (
            isinstance(value, numbers.Integral) and not isinstance(value, bool)
        ) or isinstance(value, np.random.RandomState | np.random.Generator)
    if constraint == "array-like":
        return hasattr(value, "__len__") or hasattr(value, "__array__")
    if constraint == "callable":
        return callable(value)
    if constraint == "device":
        import torch

        return isinstance(value, str | torch.device)
    if isinstance(constraint, type):
        if constraint is float:
            return isinstance(value, numbers.Real) and not isinstance(value, bool)
        if constraint is int:
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return isinstance(value, constraint)
    raise TypeError(f"unknown constraint {constraint!r}")


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, Interval | Options):
        return str(constraint)
    if isinstance(constraint, str):
        return {
            "boolean": "an instance of 'bool'",
            "random_state": "an int, a numpy RandomState/Generator or None",
            "array-like": "an array-like",
            "callable": "a callable",
            "device": "a device name ('auto', 'cpu', 'cuda', 'cuda:N')",
        }[constraint]
    return f"an instance of '{constraint.__name__}'"


def check_param(name: str, value: Any, constraints: list, owner: str) -> None:
    """Raise :class:`ParameterError` unless ``value`` satisfies one of ``constraints``.

    Parameters
    ----------
    name : str
        Parameter name, quoted in the message.
    value : object
        The value received.
    constraints : list
        Accepted constraints (any one suffices).
    owner : str
        The estimator or function the parameter belongs to.
    """
    if any(_accepts(c, value) for c in constraints):
        return
    descs = [_describe(c) for c in constraints]
    allowed = descs[0] if len(descs) == 1 else ", ".join(descs[:-1]) + " or " + descs[-1]
    raise ParameterError(
        f"The '{name}' parameter of {owner} must be {allowed}. Got {value!r} instead."
    )


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, list], owner: str) -> None:
    """Check every parameter in ``params`` that has an entry in ``constraints``."""
    for name, value in params.items():
        if name in constraints:
            check_param(name, value, constraints[name], owner)


def check_same_index(arguments: Mapping[str, Any], owner: str) -> None:
    """A :class:`ParameterError` when two pandas Series among ``arguments`` (name -> value)
    have different indexes: their values would be paired by position, not by label.

    The message names ``owner``, both arguments and the first position where the indexes
    differ, and says how to align them.
    """
    series = [(k, v) for k, v in arguments.items() if isinstance(v, pd.Series)]
    for name, other in series[1:]:
        first, ref = series[0]
        if other.index.equals(ref.index):
            continue
        a = np.asarray(ref.index, dtype=object)
        b = np.asarray(other.index, dtype=object)
        n = min(a.size, b.size)
        differ = np.flatnonzero(a[:n] != b[:n])
        i = int(differ[0]) if differ.size else n
        at = (f"position {i}: {plain(a[i])!r} vs {plain(b[i])!r}" if i < n
              else f"lengths {a.size} and {b.size}")
        raise ParameterError(
            f"{owner}: the '{first}' and '{name}' arguments are pandas Series with different "
            f"indexes ({at}); their values would be paired by position, not by label. Align "
            f"them first (e.g. {name}.reindex({first}.index)) or pass arrays (.to_numpy()).")


def check_vector(values, name: str, owner: str | None, *, per: str, numeric: bool = True,
                 kind: str = "parameter", scalar: bool = False) -> np.ndarray:
    """``values`` as a 1-D array with one entry per ``per`` (a trial, a cell ..), or a
    :class:`ParameterError` naming the ``kind`` ``name`` of ``owner``.

    Lists, NumPy arrays, pandas Series/Index (missing values NaN), DataArrays and tensors
    are accepted; ``numeric`` makes the entries floats, else they are kept as given
    (labels). ``scalar`` lets a single number stand for one entry.
    """
    of = f"The '{name}' {kind}" + (f" of {owner}" if owner else "")
    try:
        if isinstance(values, pd.Series | pd.Index):
            out = (values.to_numpy(dtype=float, na_value=np.nan) if numeric
                   else values.to_numpy())
        else:
            out = np.asarray(to_numpy(values), dtype=float if numeric else None)
    except (TypeError, ValueError):
        sample = list(np.ravel(np.asarray(values, dtype=object))[:3]) if np.ndim(values) else values
        raise ParameterError(f"{of} must be numeric: numbers, one per {per}; got values such as "
                             f"{sample!r}.") from None
    if scalar and out.ndim == 0:
        out = out.reshape(1)
    if out.ndim != 1:
        raise ParameterError(f"{of} must be 1-D (one entry per {per}); got shape {out.shape}.")
    return out


def plain(value: Any) -> Any:
    """``value`` as Python prints it plainly (``10``, not ``np.int64(10)``)."""
    return value.item() if isinstance(value, np.generic) else value
