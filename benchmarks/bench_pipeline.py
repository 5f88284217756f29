"""Pipeline throughput: serial vs local processes vs a Dask LocalCluster.

Writes ``--n`` synthetic recordings (sample-sized: 60 units, 120 trials, half
reaching, half decision sessions, made with ``neuroml.datasets``) to a temporary
folder, runs ``pipelines/quickstart.yaml`` over them with each executor, checks that
every executor wrote identical outputs, and prints

- recordings per minute (wall clock of the whole run, startup included);
- the machine's load average around each run (other processes competing for the
  cores make the parallel executors look slower than they are);
- per recording, from ``run.json``'s step timings: the analysis (loading + the steps'
  own work), writing the outputs, and the framework's overhead — everything else the
  workers' wall time went to (process/cluster startup, imports, scheduling, done-markers,
  summary), as ``workers x wall / n - (analysis + writing)``.

Run: ``python benchmarks/bench_pipeline.py [--n 32] [--workers 2] [--pipeline FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_recordings(folder: Path, n: int) -> list[Path]:
    from neuroml.datasets import make_decision, make_reaching

    paths = []
    for i in range(n):
        if i % 2 == 0:
            rec = make_reaching(n_units=60, n_trials=120, random_state=1000 + i)
            name = f"reaching_{i:03d}.nwb"
        else:
            rec = make_decision(n_units=60, n_trials=120, snr=2.0, choice_snr=2.0,
                                random_state=1000 + i)
            name = f"decision_{i:03d}.nwb"
        paths.append(rec.to_nwb(folder / name))
    return paths


def timings(out: Path) -> dict:
    info = json.loads((out / "run.json").read_text())
    recs = [r for r in info["recordings"] if r["status"] == "ok"]
    load = sum(s["compute_s"] for r in recs for s in r["steps"] if s["step"] == "load")
    compute = sum(s["compute_s"] for r in recs for s in r["steps"] if s["step"] != "load")
    write = sum(s["write_s"] for r in recs for s in r["steps"])
    return {"n": len(recs), "load": load, "compute": compute, "write": write,
            "worker_seconds": sum(r["seconds"] for r in recs), "wall": info["seconds"],
            "executor": info["executor"]}


def compare(a: Path, b: Path) -> None:
    """Assert two output folders hold the same numbers (arrays, metrics) and files."""
    import numpy as np
    import xarray as xr

    for d in sorted(p for p in a.iterdir() if p.is_dir()):
        files = sorted(f.name for f in d.iterdir())
        assert files == sorted(f.name for f in (b / d.name).iterdir()), d.name
        for f in files:
            if f.endswith(".nc"):
                x, y = xr.load_dataarray(d / f), xr.load_dataarray(b / d.name / f)
                np.testing.assert_allclose(x.values, y.values, rtol=1e-6, atol=1e-9,
                                           err_msg=f"{d.name}/{f}")
            elif f.endswith(".json") and not f.startswith("_"):
                ja = json.loads((d / f).read_text())
                jb = json.loads((b / d.name / f).read_text())
                for k, v in ja.items():
                    if isinstance(v, float):
                        assert abs(v - jb[k]) <= 1e-6 * max(1.0, abs(v)), (d.name, f, k)
                    else:
                        assert v == jb[k], (d.name, f, k)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=32, help="recordings (default 32)")
    p.add_argument("--workers", type=int, default=2, help="workers of processes/dask")
    p.add_argument("--pipeline", default=str(ROOT / "pipelines" / "quickstart.yaml"))
    p.add_argument("--executors", default="serial,processes,dask")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")

    from neuroml.pipeline import DaskExecutor, run_pipeline
    from neuroml.pipeline.report import versions

    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        t0 = time.perf_counter()
        (tmp / "recordings").mkdir()
        make_recordings(tmp / "recordings", args.n)
        print(f"wrote {args.n} recordings in {time.perf_counter() - t0:.1f} s "
              f"({sum(f.stat().st_size for f in (tmp / 'recordings').iterdir()) / 1e6:.0f} MB)")
        v = versions()
        print(f"python {v['python']}, torch {v.get('torch')}, dask {v.get('dask', '-')}, "
              f"cores {os.cpu_count()}, pipeline {Path(args.pipeline).name}")
        rows = {}
        for kind in args.executors.split(","):
            out = tmp / f"out_{kind}"
            executor = DaskExecutor(workers=args.workers) if kind == "dask" else kind
            load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            t0 = time.perf_counter()
            report = run_pipeline(args.pipeline, [tmp / "recordings"], out, executor=executor,
                                  workers=args.workers if kind == "processes" else None,
                                  progress=False)
            wall = time.perf_counter() - t0
            assert report.ok, [r.error for r in report.results if not r.ok]
            t = timings(out)
            workers = 1 if kind == "serial" else args.workers
            analysis = (t["load"] + t["compute"]) / t["n"]
            write = t["write"] / t["n"]
            overhead = workers * wall / t["n"] - analysis - write
            bookkeeping = (t["worker_seconds"] - t["load"] - t["compute"] - t["write"]) / t["n"]
            rows[kind] = (wall, analysis, write, overhead, workers, bookkeeping)
            load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{kind}: {wall:.1f} s (1-min load average {load0:.1f} before, "
                  f"{load1:.1f} after, on {os.cpu_count()} cores)")
            if kind != "serial" and "serial" in rows:
                compare(tmp / "out_serial", out)
        print()
        print(f"{'executor':<10} {'workers':>7} {'wall s':>8} {'rec/min':>8} "
              f"{'analysis s/rec':>15} {'writing s/rec':>14} {'overhead s/rec':>15} "
              f"{'overhead %':>10} {'in-worker s/rec':>16}")
        for kind, (wall, analysis, write, overhead, workers, bookkeeping) in rows.items():
            total = analysis + write + overhead
            print(f"{kind:<10} {workers:>7} {wall:>8.1f} {60 * args.n / wall:>8.1f} "
                  f"{analysis:>15.2f} {write:>14.2f} {overhead:>15.2f} "
                  f"{100 * overhead / total:>9.1f}% {bookkeeping:>16.3f}")
        print("analysis = loading + the steps' own work; writing = saving outputs (figures "
              "rendered included)")
        print("overhead = workers x wall / n - analysis - writing (startup, imports, "
              "scheduling, idle)")
        print("in-worker = per recording, the framework's bookkeeping inside the worker "
              "(marker, fingerprint, checks)")
        if "serial" in rows:
            for kind in rows:
                if kind != "serial":
                    print(f"{kind} vs serial: {rows['serial'][0] / rows[kind][0]:.2f}x faster; "
                          "outputs identical (arrays within 1e-6)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
