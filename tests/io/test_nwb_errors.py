"""Every way an NWB file can be wrong gives a RecordingError that names the file."""

from __future__ import annotations

import re
import shutil
import sys

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO
from pynwb.testing.mock.base import mock_TimeSeries
from pynwb.testing.mock.file import mock_NWBFile

from neuroml.errors import ParameterError, RecordingError
from neuroml.io.nwb import find_recordings, load_recording, write_nwb
from neuroml.io.recording import Recording
from neuroml.io.spikes import SpikeTrains


def _write(nwbfile, path):
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def _named(path) -> str:
    """A regex matching the file's name in a message."""
    return re.escape(str(path.name))


@pytest.fixture()
def valid_file(tmp_path):
    nwb = mock_NWBFile()
    rng = np.random.default_rng(0)
    nwb.add_acquisition(mock_TimeSeries(name="sig", data=rng.normal(size=(20000, 4)), rate=1000.0))
    for _ in range(5):
        nwb.add_unit(spike_times=np.sort(rng.uniform(0, 20, 200)))
    nwb.add_trial_column("choice", "left/right")
    for k in range(10):
        nwb.add_trial(start_time=2.0 * k, stop_time=2.0 * k + 1, choice="left")
    return _write(nwb, tmp_path / "valid.nwb")


def test_missing_path(tmp_path):
    path = tmp_path / "nowhere" / "missing.nwb"
    with pytest.raises(RecordingError, match=rf"{_named(path)}.*does not exist"):
        load_recording(path)


def test_directory_that_is_not_zarr(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    with pytest.raises(RecordingError, match=rf"'{re.escape(str(folder))}' is a directory but not a Zarr"):
        load_recording(folder)


def test_find_recordings_missing_folder(tmp_path):
    with pytest.raises(RecordingError, match=r"folder '.*absent' does not exist"):
        find_recordings(tmp_path / "absent")


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.nwb"
    path.write_text("this is a text file, not an NWB recording\n" * 20)
    with pytest.raises(RecordingError, match=rf"{_named(path)}' is not an HDF5 file"):
        load_recording(path)


def test_truncated_file(valid_file, tmp_path):
    cut = tmp_path / "truncated.nwb"
    shutil.copyfile(valid_file, cut)
    size = cut.stat().st_size
    with open(cut, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(RecordingError, match=rf"{_named(cut)}.*(truncated|corrupt)") as info:
        load_recording(cut)
    assert isinstance(info.value.__cause__, Exception)  # the h5py error is kept as the cause


def test_no_units_when_spikes_are_asked_for(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_acquisition(mock_TimeSeries(name="sig", data=np.ones(10), rate=10.0))
    path = _write(nwb, tmp_path / "no_units.nwb")
    with load_recording(path) as rec:
        assert rec.spikes is None
        with pytest.raises(RecordingError, match=rf"{_named(path)}.*no spike trains"):
            rec.bin(0.1)


def test_epochs_align_column_missing(valid_file):
    with load_recording(valid_file) as rec:
        with pytest.raises(RecordingError, match=rf"{_named(valid_file)}.*columns.*Got 'go_cue'"):
            rec.epochs("go_cue", (-0.5, 0.5), 0.1)
        # the columns the table does have work
        assert rec.epochs("start_time", (-0.5, 0.5), 0.1).sizes["trial"] == 10


def test_nan_timestamps_raise_when_the_signal_is_loaded(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_acquisition(mock_TimeSeries(name="broken", data=np.ones(4),
                                        timestamps=[0.0, np.nan, 2.0, 3.0]))
    nwb.add_acquisition(mock_TimeSeries(name="fine", data=np.ones(4), rate=2.0))
    path = _write(nwb, tmp_path / "nan_times.nwb")
    with load_recording(path) as rec:  # opening is fine: nothing is read yet
        assert rec.signals["fine"].shape == (4, 1)
        with pytest.raises(RecordingError,
                           match=rf"{_named(path)}.*'acquisition/broken'.*1 NaN.*sample 1"):
            rec.signals["broken"]


def test_unsorted_spike_times_in_spiketrains():
    with pytest.raises(ParameterError, match="unit at position 1 has unsorted times"):
        SpikeTrains([0.1, 0.2, 0.5, 0.3], [0, 2, 4])


def test_corrupt_spike_index(valid_file):
    with h5py.File(valid_file, "r+") as h5:
        index = h5["units/spike_times_index"]
        index[-1] = index[-1] + 50  # points past the end of spike_times
    with load_recording(valid_file) as rec:
        assert len(rec.signals) == 1  # the rest of the file is still readable
        with pytest.raises(RecordingError,
                           match=rf"{_named(valid_file)}.*spike_times_index ends at 1050.*1000 spike"):
            _ = rec.spikes


def test_nan_spike_times_in_a_file(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_unit(spike_times=[0.1, np.nan, 0.3])
    path = _write(nwb, tmp_path / "nan_spikes.nwb")
    with load_recording(path) as rec:
        with pytest.raises(RecordingError, match=rf"{_named(path)}.*NaN or infinite"):
            _ = rec.spikes


def test_corrupt_data_chunk_is_wrapped(valid_file):
    with h5py.File(valid_file, "r+") as h5:  # store the data compressed, then damage a chunk
        data = h5["acquisition/sig/data"][:]
        del h5["acquisition/sig/data"]
        dset = h5.create_dataset("acquisition/sig/data", data=data, compression="gzip",
                                 chunks=(5000, 4))
        chunk = dset.id.get_chunk_info(0)
        offset, size = chunk.byte_offset, chunk.size
    with open(valid_file, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)
    with load_recording(valid_file) as rec:  # opening reads no samples
        with pytest.raises(RecordingError,
                           match=rf"series 'acquisition/sig' from NWB file '.*{_named(valid_file)}'") as info:
            rec.signals["sig"]
    assert isinstance(info.value.__cause__, OSError)


def test_zarr_without_hdmf_zarr(tmp_path, monkeypatch):
    store = tmp_path / "session.zarr.nwb"
    store.mkdir()
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    monkeypatch.setitem(sys.modules, "hdmf_zarr", None)
    monkeypatch.setitem(sys.modules, "hdmf_zarr.nwb", None)
    with pytest.raises(RecordingError, match=r"session\.zarr\.nwb.*pip install neuroml\[zarr\]"):
        load_recording(store)


@pytest.mark.filterwarnings("ignore:No cached namespaces")
def test_broken_zarr_store(tmp_path):
    pytest.importorskip("hdmf_zarr")
    store = tmp_path / "empty.zarr.nwb"
    store.mkdir()
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(RecordingError, match=r"empty\.zarr\.nwb"):
        load_recording(store)


def test_write_errors(tmp_path):
    rec = Recording.from_arrays(spike_times=[[0.1]])
    with pytest.raises(RecordingError, match=r"folder '.*no_such_dir' does not exist"):
        write_nwb(rec, tmp_path / "no_such_dir" / "x.nwb")
    path = write_nwb(rec, tmp_path / "x.nwb")
    with pytest.raises(RecordingError, match=r"x\.nwb' already exists"):
        write_nwb(rec, path)
    with pytest.raises(ParameterError, match="must be a Recording"):
        write_nwb({"spikes": []}, tmp_path / "y.nwb")
    bad_meta = Recording.from_arrays(spike_times=[[0.1]], session_start_time="not a date")
    with pytest.raises(ParameterError, match=r"session_start_time.*'not a date'"):
        write_nwb(bad_meta, tmp_path / "z.nwb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nwb"]
