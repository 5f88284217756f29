"""neuroml._validation: the shared argument checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuroml._validation import check_same_index
from neuroml.errors import ParameterError


def test_check_same_index_passes_arrays_and_series_on_one_index():
    s = pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"])
    check_same_index({"x": s, "y": s * 2, "z": np.arange(3), "w": None}, "f")
    check_same_index({"x": [1, 2], "y": np.ones(5)}, "f")  # no Series: nothing to compare


def test_check_same_index_names_both_arguments_and_where_they_differ():
    x = pd.Series([1.0, 2.0, 3.0], index=np.arange(10, 13, dtype=np.int64))
    with pytest.raises(ParameterError, match=r"^f: the 'x' and 'y' arguments .* \(position 1: "
                                             r"11 vs 99\).*y\.reindex\(x\.index\)"):
        check_same_index({"x": x, "y": pd.Series([0.0] * 3, index=[10, 99, 12])}, "f")
    with pytest.raises(ParameterError, match=r"'x' and 'z' .* \(lengths 3 and 2\)"):
        check_same_index({"x": x, "z": x.iloc[:2]}, "f")
