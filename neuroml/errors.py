"""The exception types users catch.

Every error neuroml raises on purpose derives from :class:`NeuroMLError`, so a lab
script can catch them all with one ``except``. Each concrete type also derives from
the built-in exception a Python user would expect (``ValueError``, ``OSError``), so
generic handlers and scikit-learn's own checks keep working.

Hierarchy::

    NeuroMLError
    ├── RecordingError      (also OSError)    a file or recording is missing, corrupt or lacks what was asked
    ├── ParameterError      (also ValueError) a parameter or an input array is not allowed
    │   └── ConfigError                       a pipeline file has a bad key, type or value
    ├── DeviceError         (also RuntimeError) a device was asked for that does not exist
    └── NotFittedError      (scikit-learn's)  an estimator was used before ``fit``
"""

from __future__ import annotations

import threading

__all__ = [
    "NeuroMLError",
    "RecordingError",
    "ParameterError",
    "ConfigError",
    "DeviceError",
    "NotFittedError",  # noqa: F822 (made on first use by __getattr__ below)
]


class NeuroMLError(Exception):
    """Base class of every error neuroml raises on purpose."""


class RecordingError(NeuroMLError, OSError):
    """A recording file is missing, unreadable, corrupt, or lacks what was asked for.

    The message names the file and what is wrong with it.
    """


class ParameterError(NeuroMLError, ValueError):
    """A parameter or input array has a value that is not allowed.

    The message names the parameter, the value received and what is allowed, in
    scikit-learn's shape: ``The 'bin_size' parameter of bin must be a float in the
    range (0, inf). Got -1 instead.``
    """


class ConfigError(ParameterError):
    """A pipeline file is invalid; the message names the key path and what is allowed."""


class DeviceError(NeuroMLError, RuntimeError):
    """A compute device was requested that is not available here."""


_LOCK = threading.Lock()


def __getattr__(name: str):
    # NotFittedError derives from scikit-learn's, whose import (all of sklearn's
    # package init) costs ~1 s: the class is made on first use, so that
    # ``import neuroml`` and ``neuroml --help`` stay fast.
    if name != "NotFittedError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _LOCK:
        if "NotFittedError" not in globals():
            from sklearn.exceptions import NotFittedError as sklearn_not_fitted

            globals()["NotFittedError"] = type("NotFittedError", (NeuroMLError, sklearn_not_fitted), {
                "__doc__": "An estimator was used before it was fitted (also scikit-learn's "
                           "NotFittedError).",
                "__module__": __name__,
                "__qualname__": "NotFittedError",
            })
    return globals()["NotFittedError"]
