"""NWB files in and out: :func:`load_recording`, :func:`find_recordings`, :func:`write_nwb`.

Reading is lazy: opening a file reads its metadata and the layout of its groups; the
spike trains, the trials table, each interval table and each signal are read from the
file the first time they are used. The file stays open until :meth:`Recording.close`
(or the end of a ``with`` block).

Both NWB storage back-ends are read: HDF5 files (``*.nwb``) with pynwb's
``NWBHDF5IO``, and Zarr NWB directories (``*.zarr.nwb`` / ``*.nwb.zarr``) with
``hdmf_zarr`` (``pip install neuroml[zarr]``). Writing produces HDF5.

This module is the public face; the code lives in private modules, one concept each:

- ``_nwb_find``: :func:`find_recordings` and what counts as a recording on disk.
- ``_nwb_read``: :func:`load_recording`: opening a file, walking its groups, metadata,
  and the lazy :class:`Recording` it returns.
- ``_nwb_read_objects``: one NWB object in: a table as a DataFrame, the units table as
  :class:`SpikeTrains`, a TimeSeries as a ``(time, channel)`` DataArray.
- ``_nwb_write``: :func:`write_nwb`: the NWBFile built from a Recording, written
  atomically (temporary file, then rename).
- ``_nwb_write_objects``: one NWB object out: table columns, TimeIntervals, TimeSeries,
  and the compression of large arrays.
- ``_nwb_common``: what reader and writer agree on (metadata fields, the marker that
  carries a signal's name and labels, the column for non-integer unit ids).
"""

from __future__ import annotations

# ``_is_recording`` stays importable from here for neuroml.cli and neuroml.pipeline.runner.
from ._nwb_find import _is_recording as _is_recording
from ._nwb_find import find_recordings
from ._nwb_read import load_recording
from ._nwb_write import write_nwb

__all__ = ["load_recording", "find_recordings", "write_nwb"]
