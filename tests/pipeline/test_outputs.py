"""Atomic writes, NetCDF sanitising and done-markers."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuroml.pipeline import outputs as io_out


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "a.json"
    io_out.write_json(path, {"x": 1})
    io_out.write_json(path, {"x": 2, "y": [1.5, np.float32(2.5)]})
    assert json.loads(path.read_text()) == {"x": 2, "y": [1.5, 2.5]}
    assert _listing(tmp_path) == ["a.json"]
    # permissions follow the umask, not mkstemp's 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    io_out.write_text(path, "old")
    with pytest.raises(RuntimeError), io_out.atomic_path(path) as tmp:
        tmp.write_text("partial new content")
        raise RuntimeError("killed half-way")
    assert path.read_text() == "old"
    assert _listing(tmp_path) == ["a.txt"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".epochs.nc.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "keep.nc").write_bytes(b"x")
    assert io_out.remove_stale_temporaries(tmp_path) == 1
    assert _listing(tmp_path) == ["keep.nc"]


def test_json_has_no_nan_and_plain_types():
    out = io_out.to_jsonable({"a": np.int64(3), "b": np.nan, "c": np.arange(3),
                              "d": (np.bool_(True), float("inf")), "e": xr.DataArray(2.0)})
    assert out == {"a": 3, "b": None, "c": [0, 1, 2], "d": [True, None], "e": 2.0}


def test_array_round_trip_with_awkward_coordinates_and_attrs(tmp_path):
    da = xr.DataArray(
        np.arange(12.0).reshape(3, 4), dims=("trial", "unit"),
        coords={"trial": [0, 1, 2], "unit": [10, 11, 12, 13],
                "name": ("trial", np.array(["a", "b", "c"], dtype=object)),
                "ok": ("trial", [True, False, True]),
                "ragged": ("trial", np.array([[1, 2], [3], []], dtype=object)),
                "mixed": ("trial", np.array([1, 2.5, 3], dtype=object))},
        attrs={"window": [-0.5, 1.0], "bin_size": 0.05, "flag": True, "none": None,
               "nested": {"a": 1}, "labels": ["x", 1]},
        name=None,
    )
    path = io_out.write_array(tmp_path / "x.nc", da, "latents")
    back = xr.load_dataarray(path)
    assert back.name == "latents"
    np.testing.assert_array_equal(back.values, da.values)
    assert back["name"].values.tolist() == ["a", "b", "c"]
    assert back["ok"].values.tolist() == [True, False, True]
    assert back["mixed"].values.tolist() == [1.0, 2.5, 3.0]
    assert [json.loads(v) for v in back["ragged"].values] == [[1, 2], [3], []]
    np.testing.assert_array_equal(back.attrs["window"], [-0.5, 1.0])
    assert back.attrs["flag"] == 1 and "none" not in back.attrs
    assert json.loads(back.attrs["nested"]) == {"a": 1}
    assert json.loads(back.attrs["labels"]) == ["x", 1]


def test_multiindex_is_reset(tmp_path):
    da = xr.DataArray(np.arange(4.0), dims="s",
                      coords={"s": pd.MultiIndex.from_product([[0, 1], ["a", "b"]],
                                                              names=("trial", "k"))})
    back = xr.load_dataarray(io_out.write_array(tmp_path / "m.nc", da))
    assert back["trial"].values.tolist() == [0, 0, 1, 1]
    assert back["k"].values.tolist() == ["a", "b", "a", "b"]


def test_table_and_figure_writers(tmp_path):
    from matplotlib.figure import Figure

    df = pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 0.25]})
    io_out.write_table(tmp_path / "h.csv", df)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "h.csv"), df)
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    paths = io_out.write_figure(tmp_path / "fig", fig, ("png", "pdf", "svg"), dpi=50)
    assert [p.name for p in paths] == ["fig.png", "fig.pdf", "fig.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    # no creation dates: the same figure gives the same bytes
    again = io_out.write_figure(tmp_path / "fig2", fig, ("pdf", "svg"), dpi=50)
    assert again[0].read_bytes() == paths[1].read_bytes()
    assert again[1].read_bytes() == paths[2].read_bytes()


def test_done_marker_checks_hash_input_and_outputs(tmp_path):
    src = tmp_path / "rec.nwb"
    src.write_bytes(b"data")
    rec = tmp_path / "out"
    rec.mkdir()
    (rec / "a.nc").write_bytes(b"12345")
    fp = io_out.fingerprint(src)
    io_out.write_marker(rec, pipeline_hash="h1", source_fingerprint=fp, outputs=["a.nc"],
                        extra={"metrics": {"m": 1}})
    assert io_out.check_marker(rec, "h1", fp)["metrics"] == {"m": 1}
    assert io_out.check_marker(rec, "h2", fp) is None  # another pipeline
    (rec / "a.nc").write_bytes(b"123")  # an output changed size
    assert io_out.check_marker(rec, "h1", fp) is None
    (rec / "a.nc").unlink()  # an output is missing
    assert io_out.check_marker(rec, "h1", fp) is None
    (rec / "a.nc").write_bytes(b"12345")
    assert io_out.check_marker(rec, "h1", fp) is not None
    src.write_bytes(b"other data")  # the input changed
    assert io_out.check_marker(rec, "h1", io_out.fingerprint(src)) is None
    (rec / io_out.MARKER).write_text("{not json")  # a torn marker is no marker
    assert io_out.check_marker(rec, "h1", fp) is None
