"""SpikeTrains: ragged layout, selection, and binning checked against np.histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuroml.errors import NeuroMLError, ParameterError
from neuroml.io import spikes as spikes_mod
from neuroml.io.spikes import SpikeTrains, assign_bins, bin_edges


def random_trains(rng, n_units=6, duration=10.0, rate=20.0, empty=(2,)):
    """Poisson-like trains; the units in ``empty`` have no spikes."""
    trains = []
    for u in range(n_units):
        n = 0 if u in empty else rng.poisson(rate * duration)
        trains.append(np.sort(rng.uniform(0.0, duration, n)))
    return trains


def reference_counts(trains, edges):
    """Per-unit np.histogram, stacked as (time, unit)."""
    return np.stack([np.histogram(t, edges)[0] for t in trains], axis=1).reshape(
        edges.size - 1, len(trains)
    )


def reference_edges(start, n_bins, bin_size, stop):
    """``start + bin_size * k`` with the last edge never below ``stop`` (the documented rule)."""
    edges = start + bin_size * np.arange(n_bins + 1, dtype=np.float64)
    edges[-1] = max(edges[-1], stop)
    return edges


# ---------------------------------------------------------------------------- binning
@pytest.mark.parametrize("bin_size", [0.1, 0.01, 0.37, 1 / 3, 0.25])
@pytest.mark.parametrize("start, n_bins", [(0.0, 23), (-1.3, 40), (4.81, 190)])
def test_bin_equals_histogram_with_spikes_on_edges(bin_size, start, n_bins):
    rng = np.random.default_rng(int(bin_size * 1000) + n_bins)
    stop = round(start + n_bins * bin_size, 10)  # a decimal, as a user would type it
    edges = reference_edges(start, n_bins, bin_size, stop)
    on_edges = edges[rng.integers(0, edges.size, 30)]
    trains = []
    for _ in range(5):
        t = np.concatenate([
            rng.uniform(start - 1.0, stop + 1.0, 200),          # some outside [start, stop]
            on_edges,                                            # exactly on interior edges
            np.nextafter(on_edges, -np.inf), np.nextafter(on_edges, np.inf),
            [start, start, stop, np.nextafter(stop, np.inf), np.nextafter(start, -np.inf)],
        ])
        trains.append(np.sort(t))
    trains.append(np.zeros(0))  # an empty unit
    st = SpikeTrains.from_list(trains)

    counts = st.bin(bin_size, start=start, stop=stop)

    assert counts.sizes == {"time": n_bins, "unit": len(trains)}
    np.testing.assert_array_equal(counts.values, reference_counts(trains, edges))
    # Every spike in [start, last edge] is counted, and the last edge is never below
    # stop, so spikes exactly at stop are always counted.
    assert edges[-1] >= stop and edges[-1] - stop < 1e-9 * bin_size + 1e-12
    inside = sum(int(np.sum((t >= start) & (t <= edges[-1]))) for t in trains)
    assert int(counts.sum()) == inside
    assert int(counts[-1].sum()) >= 5  # the five spikes at stop
    np.testing.assert_allclose(counts["time"].values, (edges[:-1] + edges[1:]) / 2, rtol=0, atol=1e-12)


def test_spike_at_stop_counted_when_round_off_leaves_last_edge_below_stop():
    # 4.81 + 190 * 0.05 == 14.309999999999999 < 14.31 in float64
    start, stop, bin_size = 4.81, 14.31, 0.05
    assert start + 190 * bin_size < stop
    st = SpikeTrains.from_list([[start, 10.0, stop]])
    counts = st.bin(bin_size)  # default start/stop: first and last spike
    assert counts.sizes["time"] == 190
    assert int(counts.sum()) == 3
    assert int(counts[-1, 0]) == 1
    np.testing.assert_array_equal(bin_edges(start, stop, bin_size)[[0, -1]], [start, stop])


@pytest.mark.parametrize("bin_size", [0.1, 0.37, 1 / 3, 2.5])
def test_bin_defaults_span_first_to_last_spike(bin_size):
    rng = np.random.default_rng(1)
    trains = random_trains(rng, duration=7.3)
    st = SpikeTrains.from_list(trains)
    lo = min(t.min() for t in trains if t.size)
    hi = max(t.max() for t in trains if t.size)

    counts = st.bin(bin_size)

    n_bins = max(1, int(np.ceil((hi - lo) / bin_size - 1e-9)))
    edges = reference_edges(lo, n_bins, bin_size, hi)
    assert counts.sizes["time"] == n_bins
    np.testing.assert_array_equal(counts.values, reference_counts(trains, edges))
    assert int(counts.sum()) == st.n_spikes == sum(t.size for t in trains)
    assert counts["time"].values[0] == pytest.approx(lo + bin_size / 2, abs=1e-12)
    assert counts.attrs["start"] == lo and counts.attrs["stop"] == hi
    # Only start, only stop given: the other end still defaults to the spikes.
    np.testing.assert_array_equal(st.bin(bin_size, start=lo).values, counts.values)
    np.testing.assert_array_equal(st.bin(bin_size, stop=hi).values, counts.values)


def test_bin_random_data_across_many_chunks(monkeypatch):
    """Chunk boundaries fall inside units; the counts must not notice."""
    monkeypatch.setattr(spikes_mod, "_CHUNK", 997)
    rng = np.random.default_rng(2)
    trains = random_trains(rng, n_units=12, duration=30.0, rate=40.0, empty=(0, 5, 11))
    st = SpikeTrains.from_list(trains)
    assert st.n_spikes > 10 * 997
    counts = st.bin(0.01, start=0.0, stop=30.0)
    edges = reference_edges(0.0, 3000, 0.01, 30.0)
    np.testing.assert_array_equal(counts.values, reference_counts(trains, edges))


def test_bin_huge_number_of_bins():
    rng = np.random.default_rng(3)
    trains = [np.sort(rng.uniform(0, 2.0, 5000)), np.sort(rng.uniform(0, 2.0, 300))]
    st = SpikeTrains.from_list(trains)
    counts = st.bin(2e-6, start=0.0, stop=2.0)
    assert counts.sizes["time"] == 1_000_000
    edges = reference_edges(0.0, 1_000_000, 2e-6, 2.0)
    np.testing.assert_array_equal(counts.values, reference_counts(trains, edges))
    assert int(counts.sum()) == 5300


def test_bin_single_bin_when_bin_wider_than_span():
    st = SpikeTrains.from_list([[1.0, 1.5], [1.2]])
    counts = st.bin(10.0)
    assert counts.values.tolist() == [[2, 1]]
    assert counts["time"].values.tolist() == [6.0]


def test_bin_empty_units_and_no_spikes():
    st = SpikeTrains.from_list([[], [0.5], []], unit_ids=["a", "b", "c"])
    counts = st.bin(0.25, start=0.0, stop=1.0)
    assert counts.values.tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]

    none = SpikeTrains.from_list([[], []])
    counts = none.bin(0.1)  # no spikes, no span: one bin from 0
    assert counts.shape == (1, 2) and int(counts.sum()) == 0
    counts = none.bin(0.1, start=2.0, stop=3.0)
    assert counts.shape == (10, 2) and int(counts.sum()) == 0

    zero_units = SpikeTrains.from_list([])
    counts = zero_units.bin(0.5, start=0.0, stop=2.0)
    assert counts.shape == (4, 0)


def test_bin_dims_coords_dtype():
    st = SpikeTrains.from_list([[0.1, 0.5, 0.55], [0.2]], unit_ids=[7, 9])
    counts = st.bin(0.2, start=0.0, stop=0.6)
    assert counts.dims == ("time", "unit")
    assert np.issubdtype(counts.dtype, np.integer)
    np.testing.assert_allclose(counts["time"].values, [0.1, 0.3, 0.5], atol=1e-12)
    assert counts["unit"].values.tolist() == [7, 9]
    assert counts.sel(unit=7).values.tolist() == [1, 0, 2]
    assert counts.attrs["bin_size"] == 0.2


@pytest.mark.parametrize("bin_size", [0.1, 0.01, 0.37, 1 / 3])
def test_assign_bins_matches_numpy(bin_size):
    rng = np.random.default_rng(4)
    edges = bin_edges(-0.7, 9.1, bin_size)
    t = np.concatenate([rng.uniform(-2, 11, 5000), edges, np.nextafter(edges, -np.inf),
                        np.nextafter(edges, np.inf)])
    idx = assign_bins(t, edges)
    # numpy: bin i holds edges[i] <= t < edges[i+1]; the last bin also holds edges[-1]
    ref = np.searchsorted(edges, t, side="right") - 1
    ref[t == edges[-1]] = edges.size - 2
    ref[(t < edges[0]) | (t > edges[-1])] = -1
    np.testing.assert_array_equal(idx, ref)
    assert idx.dtype == np.int64


def test_assign_bins_non_finite_times_are_outside():
    edges = bin_edges(0.0, 1.0, 0.1)
    t = np.array([np.nan, 0.05, 1.0, np.inf, -np.inf, 1.0 + 1e-12])
    assert assign_bins(t, edges).tolist() == [-1, 0, 9, -1, -1, -1]


def test_bin_edges_counts_and_monotone():
    assert bin_edges(0.0, 1.0, 0.1).size == 11       # 1.0 / 0.1 without a spurious bin
    assert bin_edges(0.0, 0.3, 0.1).size == 4         # 0.3 / 0.1 = 2.9999999999999996
    assert bin_edges(0.0, 1.05, 0.1).size == 12       # partial last bin
    assert bin_edges(2.0, 2.0, 0.1).tolist() == [2.0, 2.1]
    assert np.all(np.diff(bin_edges(-3.3, 7.7, 1 / 3)) > 0)


# ---------------------------------------------------------------------------- access
def test_len_indexing_and_selection():
    units = pd.DataFrame({"depth": [10.0, 20.0, 30.0]})
    st = SpikeTrains.from_list([[0.3, 0.1], [0.2], []], unit_ids=[11, 22, 33], units=units)
    assert len(st) == 3 and st.n_spikes == 3
    assert st.counts.tolist() == [2, 1, 0]
    assert st[11].tolist() == [0.1, 0.3]                   # sorted by from_list
    assert st[np.int64(22)].tolist() == [0.2]
    assert st[33].size == 0
    assert [t.tolist() for t in st] == [[0.1, 0.3], [0.2], []]

    sub = st[[33, 11]]
    assert isinstance(sub, SpikeTrains)
    assert sub.unit_ids.tolist() == [33, 11]
    assert [t.tolist() for t in sub] == [[], [0.1, 0.3]]
    assert sub.units["depth"].tolist() == [30.0, 10.0]

    masked = st.select(np.array([False, True, True]))
    assert masked.unit_ids.tolist() == [22, 33]
    assert masked.times.tolist() == [0.2]
    assert st[1:].equals(masked)
    assert st.units.index.name == "unit"


def test_restrict_is_half_open():
    st = SpikeTrains.from_list([[0.0, 1.0, 1.5, 2.0, 3.0], [2.0, 2.5]], unit_ids=[4, 5])
    r = st.restrict(1.0, 2.0)
    assert r[4].tolist() == [1.0, 1.5]       # start kept, stop dropped
    assert r[5].size == 0
    assert r.unit_ids.tolist() == [4, 5]
    r = st.restrict(1.0, 2.5)
    assert [t.tolist() for t in r] == [[1.0, 1.5, 2.0], [2.0]]


def test_restrict_matches_mask_on_random_data():
    rng = np.random.default_rng(5)
    trains = random_trains(rng, duration=5.0)
    st = SpikeTrains.from_list(trains).restrict(1.25, 3.7)
    for got, t in zip(st, trains):
        np.testing.assert_array_equal(got, t[(t >= 1.25) & (t < 3.7)])


def test_from_list_and_from_events_agree():
    rng = np.random.default_rng(6)
    ids = np.array([3, 8, 1, 5])
    labels = rng.choice(ids[:3], 500)                 # unit 5 has no spikes
    times = rng.uniform(0, 4, 500)
    ev = SpikeTrains.from_events(times, labels, unit_ids=ids)
    lst = SpikeTrains.from_list([times[labels == u] for u in ids], unit_ids=ids)
    assert ev.equals(lst)
    assert ev[5].size == 0
    default = SpikeTrains.from_events(times, labels)  # ids = sorted unique labels
    assert default.unit_ids.tolist() == [1, 3, 8]
    np.testing.assert_array_equal(default[8], np.sort(times[labels == 8]))


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"times": [0.1, 0.2, 0.3], "offsets": [0, 5]},
         r"'offsets' parameter of SpikeTrains must start at 0 and end at len\(times\)=3"),
        ({"times": [0.1, 0.2, 0.3], "offsets": [1, 3]}, r"Got offsets starting \[1\]"),
        ({"times": [0.1, 0.2, 0.3], "offsets": [0, 2, 1, 3]}, "must be non-decreasing"),
        ({"times": [0.2, 0.1], "offsets": [0, 2]}, r"unit at position 0 has unsorted times"),
        ({"times": [0.1, 0.3, 0.2, 0.4], "offsets": [0, 1, 4]}, r"position 1 has unsorted"),
        ({"times": [0.1, np.nan], "offsets": [0, 2]}, r"1 spike time\(s\) that are NaN"),
        ({"times": [0.1, np.inf], "offsets": [0, 2]}, "NaN or infinite"),
        ({"times": [0.1, 0.2], "offsets": [0, 1, 2], "unit_ids": [3, 3]},
         r"'unit_ids' parameter of SpikeTrains must be unique. Got duplicated ids \[3\]"),
        ({"times": [0.1, 0.2], "offsets": [0, 1, 2], "unit_ids": [1, 2, 3]},
         r"one id per unit \(2\). Got shape \(3,\)"),
        ({"times": [0.1, 0.2], "offsets": [0, 1, 2], "units": pd.DataFrame({"a": [1]})},
         r"one row per unit \(2\). Got 1 rows"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match) as err:
        SpikeTrains(**kwargs)
    assert isinstance(err.value, NeuroMLError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bin_size": 0}, r"'bin_size' parameter of bin must be a float in the range \(0, inf\)"),
        ({"bin_size": -0.1}, r"must be a float in the range \(0, inf\). Got -0.1 instead"),
        ({"bin_size": np.nan}, r"'bin_size' parameter of bin .* Got nan instead"),
        ({"bin_size": np.inf}, r"'bin_size' parameter of bin .* Got inf instead"),
        ({"bin_size": "0.1"}, r"'bin_size' parameter of bin"),
        ({"bin_size": 0.1, "start": 2.0, "stop": 1.0},
         r"'stop' parameter of bin must be >= start \(2.0\). Got 1.0 instead"),
        ({"bin_size": 0.1, "start": np.nan}, r"'start' and 'stop' .* must be finite"),
        ({"bin_size": 0.1, "stop": np.inf}, r"'start' and 'stop' .* must be finite"),
        ({"bin_size": 1e-12, "start": 1e9, "stop": 1e9 + 1e-9}, "too small"),
    ],
)
def test_bin_errors(kwargs, match):
    st = SpikeTrains.from_list([[0.1, 0.5], [0.2]])
    with pytest.raises(ParameterError, match=match):
        st.bin(**kwargs)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda st: st.restrict(2.0, 1.0), r"'window' parameter of SpikeTrains.restrict"),
        (lambda st: st.restrict(1.0, 1.0), r"start < stop. Got \(1.0, 1.0\)"),
        (lambda st: st.select(np.array([True])), r"shape \(2,\). Got \(1,\)"),
        (lambda st: SpikeTrains.from_events([0.1, 0.2], [1, 5], unit_ids=[1, 2]),
         r"'unit_labels' .* not among 'unit_ids': \[5\]"),
        (lambda st: SpikeTrains.from_events([0.1, 0.2], [1, 0], unit_ids=[1, 2]),
         r"not among 'unit_ids': \[0\]"),
        (lambda st: SpikeTrains.from_events([0.1, 0.2], [1], unit_ids=[1]),
         r"one label per spike \(2\). Got 1"),
        (lambda st: SpikeTrains.from_events([0.1], [1], unit_ids=[]), "'unit_ids' .* is empty"),
    ],
)
def test_other_parameter_errors(call, match):
    st = SpikeTrains.from_list([[0.1, 0.5], [0.2]])
    with pytest.raises(ParameterError, match=match):
        call(st)


def test_unknown_unit_id_is_key_error():
    st = SpikeTrains.from_list([[0.1], [0.2]], unit_ids=[7, 9])
    with pytest.raises(KeyError, match=r"No unit with id 8; unit ids are \[7, 9\]"):
        st[8]
    with pytest.raises(KeyError, match="No unit with id 'x'"):
        st[[7, "x"]]
