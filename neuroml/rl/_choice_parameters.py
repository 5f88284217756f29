"""What a choice model is made of: its parameters, their bounds, its options.

The specification behind :class:`~neuroml.rl.choice.QLearning`: which columns a model
naming some parameters fits (:func:`parameter_columns`), their bounds, defaults and
domains (:func:`parameter_bounds`), the number of options in the choices
(:func:`count_options`), and which fitted values sit at a bound (:func:`at_bound`).
"""

from __future__ import annotations

import numpy as np

from ..device import to_numpy
from ..errors import ParameterError
from .q_learning import PARAMETER_DOMAINS, PARAMETER_NAMES

__all__ = ["DEFAULT_BOUNDS", "at_bound", "count_options", "parameter_bounds",
           "parameter_columns"]

#: Default bounds in natural units (documented in :class:`~neuroml.rl.choice.QLearning`).
DEFAULT_BOUNDS = {"alpha": (0.0, 1.0), "alpha_neg": (0.0, 1.0), "beta": (0.0, 50.0),
                  "forget": (0.0, 1.0), "bias": (-5.0, 5.0), "perseveration": (-5.0, 5.0),
                  "perseveration_rate": (0.0, 1.0)}
# A fitted parameter within this fraction of its range of a bound is reported at it. On the
# 97 humans (base and perseveration models, tol 1e-6) the fits that head for a bound stop
# up to 7.2e-5 of the range short of it, where the sigmoid's flatness meets the gradient
# test (with tol 1e-10 they reach it); the interior optima nearest a bound lie 9.1e-5
# (beta = 49.995, so reported at it) and 3.5e-4 away.
_AT_BOUND = 1e-4


def at_bound(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray, columns) -> np.ndarray:
    """Per row of ``vals`` (subject, parameter), the free parameters within ``_AT_BOUND``
    of their range of a bound, comma-separated."""
    free = hi > lo
    near = free & (np.minimum(vals - lo, hi - vals) <= _AT_BOUND * np.where(free, hi - lo, 1))
    return np.array([",".join(c for c, n in zip(columns, row) if n) for row in near],
                    dtype=object)


def _check_bounds(name: str, pair, domain: tuple[float, float]) -> tuple[float, float]:
    """``pair`` as ``(low, high)`` floats; a ParameterError unless it is two finite numbers
    (a tuple, list, array or tensor) with ``low <= high`` within ``domain``."""
    try:
        values = to_numpy(pair)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if not (values.shape == (2,) and values.dtype.kind in "iuf"
            and np.isfinite(values).all() and values[0] <= values[1]):
        raise ParameterError(f"The 'bounds' parameter of QLearning gives {name!r} the bounds "
                             f"{pair!r}; they must be a pair (low, high) of finite numbers with "
                             "low <= high.")
    pair = (float(values[0]), float(values[1]))
    if pair[0] < domain[0] or pair[1] > domain[1]:
        raise ParameterError(f"The 'bounds' parameter of QLearning gives {name!r} the bounds "
                             f"{tuple(float(v) for v in pair)}; they must lie within its domain "
                             f"[{domain[0]:g}, {domain[1]:g}].")
    return pair


def count_options(choice: np.ndarray, given: int | None = None) -> int:
    """``K`` of padded ``(subject, trial)`` choices (negative: none): ``given``, else the
    largest answered choice + 1 (at least 2).

    Raises a ParameterError when a choice is ``>= given``, or, with ``K`` inferred, when
    more than two options are numbered and some of ``0 .. K-1`` is chosen by no subject
    (e.g. 1-based codes).
    """
    counts = np.bincount(choice[choice >= 0].astype(np.int64), minlength=2)
    if given is not None:
        if counts.size > given:
            raise ParameterError(
                f"The 'choices' argument holds option {counts.size - 1}, but the "
                f"'n_options' parameter of QLearning is {given}: choices must be 0.."
                f"{given - 1}.")
        return int(given)
    missing = np.flatnonzero(counts == 0)
    if counts.size > 2 and missing.size:
        seen = np.flatnonzero(counts).tolist()
        more = "..." if missing.size > 10 else ""
        raise ParameterError(
            f"The 'choices' argument holds the options {seen[:10]}"
            f"{'...' if len(seen) > 10 else ''} but no subject ever chose "
            f"{missing.tolist()[:10]}{more}: options must be numbered 0..K-1 (K = "
            f"{counts.size} here, the largest choice + 1, shared by all subjects; an option "
            "nobody chooses would keep its value q0 and still take choice probability). "
            "Subtract 1 from 1-based codes (e.g. MATLAB's 1/2); a no-response code must be "
            "negative or NaN. If the task has options nobody chose, give their number as "
            "QLearning(n_options=...).")
    return counts.size


def parameter_columns(parameters, n_options: int) -> tuple[str, ...]:
    """The fitted columns of a model naming ``parameters`` with ``n_options`` options
    (``bias`` becomes ``bias_1 .. bias_{K-1}`` for ``K > 2``; ``perseveration`` brings
    ``perseveration_rate``), in :data:`PARAMETER_NAMES` order."""
    names = [parameters] if isinstance(parameters, str) else list(parameters)
    unknown = [p for p in names if not isinstance(p, str) or p not in PARAMETER_NAMES]
    if unknown or "alpha" not in names or "beta" not in names or len(set(names)) != len(names):
        raise ParameterError(
            f"The 'parameters' parameter of QLearning must name each of 'alpha' and 'beta' "
            f"once, plus any of {PARAMETER_NAMES[1:]}; got {tuple(names)!r}"
            + (f" (unknown: {unknown})." if unknown else "."))
    if "perseveration" in names and "perseveration_rate" not in names:
        names.append("perseveration_rate")
    if "perseveration_rate" in names and "perseveration" not in names:
        raise ParameterError("The 'parameters' parameter of QLearning names "
                             "'perseveration_rate' without 'perseveration'.")
    cols = []
    for p in PARAMETER_NAMES:
        if p in names:
            cols += ([f"bias_{k}" for k in range(1, n_options)]
                     if p == "bias" and n_options > 2 else [p])
    return tuple(cols)

def parameter_bounds(bounds, columns) -> dict:
    """``{column: (low, high)}``: the given ``bounds`` (by column, or by base name for
    every ``bias_k``) checked against each parameter's domain, else the defaults."""
    given = dict(bounds or {})
    base = {c: c.split("_")[0] if c.startswith("bias_") else c for c in columns}
    bad = [k for k in given if k not in columns and k not in base.values()]
    if bad:
        raise ParameterError(f"The 'bounds' parameter of QLearning names {bad}, which the "
                             f"model does not have (its parameters: {columns}).")
    given = {name: _check_bounds(name, pair, PARAMETER_DOMAINS["bias" if name.startswith("bias_")
                                                               else name])
             for name, pair in given.items()}
    out = {}
    for c in columns:
        lo, hi = given.get(c, given.get(base[c], DEFAULT_BOUNDS[base[c]]))
        out[c] = (float(lo), float(hi))
    return out
