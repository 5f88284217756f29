"""Shared test fixtures.

Real recordings live outside the repository, in ``shared/data/real/`` beside the repo
root (see its SOURCES.md). Tests read them in place and skip cleanly when the folder
is absent, e.g. on a machine that only has the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

#: The folder of real NWB recordings (``<repo>/../shared/data/real``).
REAL_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real").resolve()


def real_data_available() -> bool:
    """Whether the real-data folder exists on this machine."""
    return REAL_DATA.is_dir()


def real_file(name: str) -> Path:
    """Path of one real recording, or skip the calling test when it is not here."""
    path = REAL_DATA / name
    if not path.exists():
        pytest.skip(f"real data file {name!r} is not available (looked in {REAL_DATA})")
    return path


#: Marker for tests that need the real-data folder.
requires_real_data = pytest.mark.skipif(
    not real_data_available(), reason=f"real data folder {REAL_DATA} is not available"
)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real-data folder; skips the test when it is absent."""
    if not real_data_available():
        pytest.skip(f"real data folder {REAL_DATA} is not available")
    return REAL_DATA


@pytest.fixture
def run_user_guide(tmp_path, monkeypatch):
    """Run every Python block of a ``docs/user-guide/`` page, in order, in ``tmp_path``.

    Returns a function ``run(page_name) -> (namespace, n_blocks)``: the variables the
    blocks defined and how many blocks there were.
    """

    def run(page_name: str):
        page = Path(__file__).resolve().parents[1] / "docs" / "user-guide" / page_name
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        monkeypatch.chdir(tmp_path)
        namespace: dict = {}
        for block in blocks:
            exec(compile(block, str(page), "exec"), namespace)
        return namespace, len(blocks)

    return run
