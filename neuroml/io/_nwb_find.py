"""Finding NWB recordings on disk: HDF5 ``.nwb`` files and Zarr NWB directories."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..errors import ParameterError, RecordingError


def _is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and (
        ".zarr" in path.name or (path / ".zgroup").exists() or (path / ".zattrs").exists()
    )


def _is_recording(path: Path) -> bool:
    name = path.name
    if path.is_dir():
        return name.endswith((".zarr.nwb", ".nwb.zarr")) or (
            name.endswith((".nwb", ".zarr")) and _is_zarr_dir(path)
        )
    return path.is_file() and name.endswith(".nwb")


def find_recordings(folder, *, pattern: str | None = None) -> list[Path]:
    """Every NWB recording under a folder, recursively, in sorted order.

    HDF5 files ending in ``.nwb`` and Zarr NWB directories (``*.zarr.nwb`` or
    ``*.nwb.zarr``) are found; a Zarr store is returned as one recording and not
    searched inside.

    Parameters
    ----------
    folder : str or Path
        The folder to search (a single NWB file or Zarr store is returned as itself).
    pattern : str, default=None
        A glob pattern the file or directory *name* must match (e.g. ``"sub-4*"``);
        every recording when None.

    Returns
    -------
    paths : list of Path
        Sorted by their path relative to ``folder``, so the order is the same on every
        machine.

    Raises
    ------
    RecordingError
        When ``folder`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "b.nwb").touch(); (d / "a.nwb").touch(); (d / "notes.txt").touch()
    >>> [p.name for p in find_recordings(d)]
    ['a.nwb', 'b.nwb']
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise RecordingError(f"Cannot search for recordings: folder '{folder}' does not exist.")
    if pattern is not None and not isinstance(pattern, str):
        raise ParameterError(
            f"The 'pattern' parameter of find_recordings must be a str or None. Got {pattern!r} instead."
        )
    if _is_recording(root):
        found = [root]
    else:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            keep = []
            for d in sorted(dirnames):
                if _is_recording(here / d):
                    found.append(here / d)
                elif not d.startswith("."):
                    keep.append(d)
            dirnames[:] = keep  # never descend into Zarr stores or hidden folders
            found.extend(here / f for f in filenames if f.endswith(".nwb") and not f.startswith("."))
    if pattern is not None:
        found = [p for p in found if fnmatch.fnmatch(p.name, pattern)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix() if p != root else "")
