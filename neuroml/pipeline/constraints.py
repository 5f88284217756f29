"""Value constraints of pipeline parameters, and how they read in error messages.

Step parameters declare their accepted values with the constraints of
:mod:`neuroml._validation` (``Interval``, ``Options``, types, ``None``, ``"boolean"``)
plus three for YAML lists and mappings: :class:`Pair` (``[start, stop]``),
:class:`ListOf` and :class:`MappingOf`.
Messages use YAML's words (``null``, ``true or false``).
"""

from __future__ import annotations

import json
import numbers
import re
from dataclasses import dataclass
from typing import Any

from .._validation import _accepts, _describe

__all__ = ["Pair", "ListOf", "MappingOf", "accepts", "describe", "describe_all", "number_hint"]


@dataclass(frozen=True)
class Pair:
    """Two numbers ``[start, stop]`` (a YAML list), with ``start < stop`` when ``increasing``
    (``start <= stop`` with ``equal``); ``names`` are how the two read in messages."""

    increasing: bool = True
    equal: bool = False
    names: tuple = ("start", "stop")

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) != 2:
            return False
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            return False
        if any(v != v for v in value):  # NaN
            return False
        if not self.increasing:
            return True
        return value[0] <= value[1] if self.equal else value[0] < value[1]

    def __str__(self) -> str:
        a, b = self.names
        extra = f" with {a} {'<=' if self.equal else '<'} {b}" if self.increasing else ""
        return f"a list of two numbers [{a}, {b}]{extra}"


@dataclass(frozen=True)
class ListOf:
    """A non-empty list whose every item satisfies one of ``items`` (and that holds every
    item of ``required``)."""

    items: tuple
    min_len: int = 1
    unique: bool = False
    required: tuple = ()

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) < self.min_len:
            return False
        if self.unique and len({json.dumps(v, sort_keys=True, default=str) for v in value}) != len(value):
            return False
        if not all(r in value for r in self.required):
            return False
        return all(any(accepts(c, v) for c in self.items) for v in value)

    def __str__(self) -> str:
        inner = " or ".join(describe(c) for c in self.items)
        uniq = ", distinct" if self.unique else ""
        if self.required:
            uniq += ", including " + " and ".join(map(str, self.required))
        if self.min_len == 0:
            return f"a possibly empty list (each item {inner}{uniq})"
        n = "" if self.min_len == 1 else f" of at least {self.min_len}"
        return f"a list{n} (each item {inner}{uniq})"


@dataclass(frozen=True)
class MappingOf:
    """A mapping ``{name: value}`` whose names match ``keys`` (a regular expression, matched
    whole; ``key_text`` says it in words) and whose every value satisfies ``value``."""

    keys: str
    key_text: str
    value: Any

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        return all(isinstance(k, str) and re.fullmatch(self.keys, k) is not None
                   and accepts(self.value, v) for k, v in value.items())

    def __str__(self) -> str:
        return f"a mapping {{name: value}} with names among {self.key_text}, each value " \
               f"{describe(self.value)}"


def accepts(constraint: Any, value: Any) -> bool:
    """Whether ``value`` satisfies ``constraint`` (pipeline constraints included)."""
    if isinstance(constraint, Pair | ListOf | MappingOf):
        return constraint.accepts(value)
    if constraint is dict:
        return isinstance(value, dict)
    return _accepts(constraint, value)


def describe(constraint: Any) -> str:
    """How ``constraint`` reads in an error message (YAML words: ``null``, ``true``)."""
    if constraint is None:
        return "null"
    if isinstance(constraint, Pair | ListOf | MappingOf):
        return str(constraint)
    if constraint is float:
        return "a number"
    if constraint is int:
        return "an int"
    if constraint is str:
        return "a str"
    if constraint == "boolean":
        return "true or false"
    return _describe(constraint)


def describe_all(constraints) -> str:
    """``"a, b or c"`` for a list of constraints."""
    descs = [describe(c) for c in constraints]
    if len(descs) == 1:
        return descs[0]
    sep = "; " if any(", " in d or " or " in d for d in descs) else ", "
    return sep.join(descs[:-1]) + sep.rstrip() + " or " + descs[-1] if sep == "; " else \
        ", ".join(descs[:-1]) + " or " + descs[-1]


def number_hint(value: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return (" (that is a string: YAML reads numbers like '1e-3' as text; "
                "write 1.0e-3 or 0.001)")
    return ""
