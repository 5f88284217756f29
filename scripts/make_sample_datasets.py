"""Write the sample recordings in ``datasets/sample/`` (deterministic).

Three reaching sessions (:func:`neuroml.datasets.make_reaching`) and three two-choice
sessions (:func:`neuroml.datasets.make_decision`), each written as an NWB file with
``Recording.to_nwb`` plus a JSON file beside it holding the planted ground truth. The
ground truth is also stored inside each NWB file, as JSON in the NWBFile ``notes``
field (``{"neuroml_ground_truth": {...}}``), so the file is self-contained.

Usage (from the repository root)::

    python scripts/make_sample_datasets.py            # writes datasets/sample/
    python scripts/make_sample_datasets.py --out DIR  # somewhere else

The same command gives the same recordings (spikes, trials, signals, metadata) every
time; only the NWB ``file_create_date`` differs between runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neuroml.datasets import make_decision, make_reaching

ROOT = Path(__file__).resolve().parents[1]

#: name -> (generator, keyword arguments). The seed of each session is its index.
SESSIONS = {
    **{
        f"reaching_{i}": (make_reaching, {"n_units": 60, "n_trials": 120, "random_state": i})
        for i in range(3)
    },
    **{
        f"decision_{i}": (
            make_decision,
            {"n_units": 60, "n_trials": 120, "snr": snr, "random_state": i},
        )
        for i, snr in enumerate((1.5, 2.0, 2.5))
    },
}


def write_samples(out: Path) -> list[tuple[str, int, int, int]]:
    """Generate every session in :data:`SESSIONS` and write it under ``out``.

    Returns
    -------
    rows : list of (name, n_units, n_trials, bytes)
    """
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (make, kwargs) in SESSIONS.items():
        rec = make(**kwargs)
        truth = rec.meta["ground_truth"]
        rec.meta["notes"] = json.dumps({"neuroml_ground_truth": truth})
        path = rec.to_nwb(out / f"{name}.nwb", overwrite=True)
        (out / f"{name}.json").write_text(json.dumps(truth, indent=1) + "\n")
        rows.append((name, len(rec.spikes), len(rec.trials), path.stat().st_size))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "datasets" / "sample",
                        help="output folder (default: datasets/sample in the repository)")
    args = parser.parse_args(argv)
    rows = write_samples(args.out)
    total = 0
    for name, n_units, n_trials, size in rows:
        total += size
        print(f"{name:12s} {n_units:4d} units {n_trials:4d} trials {size / 1e6:6.2f} MB")
    print(f"total {total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
