"""scikit-learn's own conformance suite over every public neuroml estimator.

Estimators are discovered from the package (``neuroml._discovery.all_estimators``), not
listed here, so a new estimator is covered the day it is added. An estimator class may
set ``_test_params`` (small ``max_epochs`` etc.) to keep the checks fast, and
``_xfail_checks`` (check name -> written reason) for a check it is known to fail.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroml._discovery import all_estimators

ESTIMATORS = all_estimators()
#: Estimators of sequences of trials (RL models) are not (n_samples, n_features)
#: estimators: scikit-learn's 2-D checks do not apply; tests/test_common_devices.py gives
#: them the common tests that do.
TABULAR = [(name, cls) for name, cls in ESTIMATORS if getattr(cls, "_sklearn_checks", True)]


def _instance(cls):
    return cls(**getattr(cls, "_test_params", {}))


def _expected_failed_checks(estimator):
    return dict(getattr(type(estimator), "_xfail_checks", {}))


def test_estimators_are_discovered():
    names = {name for name, _ in ESTIMATORS}
    # Every estimator exported at the top level must be found by discovery.
    import neuroml

    exported = set()
    for name in neuroml._EXPORTS:
        try:
            obj = getattr(neuroml, name)
        except (ImportError, AttributeError):
            continue
        if isinstance(obj, type) and hasattr(obj, "fit"):
            exported.add(name)
    assert exported <= names


@parametrize_with_checks(
    [_instance(cls) for _, cls in TABULAR],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


def test_xfail_reasons_are_written():
    for name, cls in ESTIMATORS:
        for check, reason in getattr(cls, "_xfail_checks", {}).items():
            assert isinstance(reason, str) and len(reason) > 20, (name, check)


@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_init_stores_parameters_verbatim(name, cls):
    est = _instance(cls)
    params = est.get_params(deep=False)
    for key, value in params.items():
        assert getattr(est, key) is value
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
