"""The step registry: what a pipeline file may name, and what each step takes and gives.

A step is a plain function registered with :func:`register_step`. It declares

- its **inputs**: names of values it reads from the per-recording context
  (``"recording"`` always exists; ``"binned"``, ``"epochs"`` ... are written by earlier
  steps),
- its **outputs**: what it returns, each with a kind that says how it is saved
  (``"array"`` -> NetCDF, ``"metrics"`` -> JSON, ``"figure"`` -> PNG/PDF/SVG,
  ``"table"`` -> CSV, ``"data"`` -> kept in memory for later steps only),
- its **parameters**: constraints (see :mod:`neuroml._validation`) and defaults.

The function is called as ``func(ctx, **inputs, **params)`` and returns a dict with one
entry per declared output (``None`` for an output its parameters turn off, e.g. no
permutation null: nothing is written for it). ``ctx`` is a :class:`StepContext` (device, recording id,
random seed ...). An analysis step is thin: it builds the estimator from its
parameters, calls it, and hands back the results; the runner saves them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParameterError

__all__ = [
    "REQUIRED",
    "Param",
    "Input",
    "Output",
    "StepSpec",
    "StepContext",
    "register_step",
    "get_step",
    "available_steps",
    "OUTPUT_KINDS",
    "CONTEXT_ROOT",
]

#: How each output kind is written (file extension), ``None`` for in-memory only.
OUTPUT_KINDS = {"array": ".nc", "metrics": ".json", "table": ".csv", "figure": None, "data": None}

#: The context name every pipeline starts with: the loaded :class:`~neuroml.Recording`.
CONTEXT_ROOT = "recording"


class _Required:
    """Sentinel: a parameter without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self):
        return (_required, ())


def _required():
    return REQUIRED


REQUIRED = _Required()


@dataclass(frozen=True)
class Param:
    """A step parameter.

    Parameters
    ----------
    constraints : list
        Accepted values; any one suffices. Items are :mod:`neuroml._validation`
        constraints (``Interval``, ``Options``, ``int``, ``str``, ``None``, ``"boolean"``
        ...) or :class:`~neuroml.pipeline.config.Pair` / :class:`~neuroml.pipeline.config.ListOf`.
    default : object, default=REQUIRED
        The value used when the pipeline file does not set it; ``REQUIRED`` makes the
        parameter mandatory.
    doc : str, default=""
        One line for ``neuroml steps`` and the docs.
    """

    constraints: list
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        """Whether the pipeline file must set this parameter."""
        return self.default is REQUIRED


@dataclass(frozen=True)
class Input:
    """A step input.

    Parameters
    ----------
    default : str
        The context name it is read from unless the pipeline file maps it elsewhere
        (``inputs: {slot: name}``).
    doc : str, default=""
        One line for ``neuroml steps`` and the docs.
    """

    default: str
    doc: str = ""


@dataclass(frozen=True)
class Output:
    """A step output.

    Parameters
    ----------
    kind : {"array", "metrics", "table", "figure", "data"}
        How it is saved: an ``xarray.DataArray`` as NetCDF, a dict of numbers as JSON, a
        ``pandas.DataFrame`` as CSV, a matplotlib ``Figure`` in the pipeline's figure
        formats, or not at all (``"data"``: passed to later steps only).
    doc : str, default=""
        One line for ``neuroml steps`` and the docs.
    save : bool, default=True
        Whether an ``"array"`` or ``"table"`` output is written unless the pipeline file
        says otherwise (``save:`` in the step entry). Large intermediate arrays
        (binned spikes, epochs) default to False. Metrics and figures are always saved.
    """

    kind: str
    doc: str = ""
    save: bool = True

    def __post_init__(self):
        if self.kind not in OUTPUT_KINDS:
            raise ParameterError(
                f"The 'kind' parameter of Output must be one of {sorted(OUTPUT_KINDS)}. "
                f"Got {self.kind!r} instead."
            )


@dataclass(frozen=True)
class StepContext:
    """What the runner tells a step about where it runs.

    Attributes
    ----------
    recording_id : str
        The recording's id (its output folder name).
    device : str
        The device name the run asked for (``"auto"``, ``"cpu"``, ``"cuda"`` ...);
        estimators take it as their ``device`` parameter.
    step_index : int
        Position of the step in the pipeline file.
    step_name : str
        The registered step name.
    """

    recording_id: str
    device: str = "auto"
    step_index: int = 0
    step_name: str = ""


@dataclass(frozen=True)
class StepSpec:
    """A registered step: the function and its declared inputs, outputs and parameters."""

    name: str
    func: Callable
    summary: str
    inputs: Mapping[str, Input]
    outputs: Mapping[str, Output]
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The module that defines (and registers) the step; workers import it."""
        return self.func.__module__

    def defaults(self) -> dict:
        """The default value of every optional parameter."""
        return {k: p.default for k, p in self.params.items() if not p.required}


_REGISTRY: dict[str, StepSpec] = {}


def register_step(name: str, *, inputs: Mapping[str, Input | str], outputs: Mapping[str, Output],
                  params: Mapping[str, Param] | None = None, summary: str | None = None):
    """Register a function as a pipeline step (decorator).

    Parameters
    ----------
    name : str
        The name a pipeline file uses (``step: name``).
    inputs : mapping of str to Input or str
        Input slot (the keyword the function receives) -> :class:`Input`; a plain str
        is the description of an input read from the context name equal to the slot.
    outputs : mapping of str to Output
        Output name -> :class:`Output`. The name is also the context name it is
        stored under and the file name it is saved as, unless renamed (``outputs:``).
    params : mapping of str to Param, default=None
        Parameter name -> :class:`Param`.
    summary : str, default=None
        One line describing the step; the first line of the function's docstring when
        None.

    Returns
    -------
    decorator : callable
        Registers the function and returns it unchanged.

    Notes
    -----
    The function must accept ``ctx`` first, then every input slot and every parameter
    as keyword arguments, and return a dict with exactly the declared output names.
    Registering a name twice from a different function is an error (registering the
    same function again, e.g. when its module is re-imported, is allowed).
    """
    params = dict(params or {})
    inputs = {k: v if isinstance(v, Input) else Input(default=k, doc=str(v))
              for k, v in inputs.items()}

    def decorator(func: Callable) -> Callable:
        sig = inspect.signature(func)
        accepted = set(list(sig.parameters)[1:])
        missing = (set(inputs) | set(params)) - accepted
        if missing:
            raise ParameterError(
                f"Step {name!r}: function {func.__qualname__} does not accept {sorted(missing)}; "
                "it must take ctx, then every input and parameter as keyword arguments."
            )
        clash = set(inputs) & set(params)
        if clash:
            raise ParameterError(f"Step {name!r}: {sorted(clash)} are both inputs and parameters.")
        old = _REGISTRY.get(name)
        if old is not None and (old.func.__module__, old.func.__qualname__) != (
            func.__module__, func.__qualname__
        ):
            raise ParameterError(
                f"A pipeline step named {name!r} is already registered "
                f"(by {old.func.__module__}.{old.func.__qualname__})."
            )
        doc = summary or (inspect.getdoc(func) or "").split("\n", 1)[0]
        _REGISTRY[name] = StepSpec(name=name, func=func, summary=doc, inputs=inputs,
                                   outputs=dict(outputs), params=params)
        return func

    return decorator


def _ensure_builtin_steps() -> None:
    from . import steps  # noqa: F401  (registers the built-in steps)


def available_steps() -> list[str]:
    """Names of every registered step, sorted."""
    _ensure_builtin_steps()
    return sorted(_REGISTRY)


def get_step(name: str) -> StepSpec:
    """The registered step called ``name``.

    Raises
    ------
    ParameterError
        When there is no such step; the message lists the steps that exist.
    """
    _ensure_builtin_steps()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ParameterError(
            f"Unknown pipeline step {name!r}{suggest(name, _REGISTRY)}; "
            f"available steps: {', '.join(sorted(_REGISTRY))}."
        ) from None


def suggest(name: Any, choices) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``choices``, else ``""``."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
