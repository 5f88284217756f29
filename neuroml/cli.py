"""The ``neuroml`` command line.

::

    neuroml run PIPELINE.yaml RECORDINGS... --out DIR [--executor serial|processes|dask]
                [--workers N] [--scheduler ADDRESS] [--device auto|cpu|cuda] [--force]
    neuroml info FILE.nwb [FILE.nwb ...] [--json]
    neuroml steps [STEP ...] [--markdown]
    neuroml validate PIPELINE.yaml [PIPELINE.yaml ...]

Exit status: 0 when everything succeeded; 1 when a recording (``run``) or a file
(``info``) failed; 2 for a usage error, an invalid pipeline file, a missing path or an
unavailable device (nothing was processed); 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version() -> str:
    from . import __version__

    return __version__


# ====================================================================== info
def _fmt_value(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "(none)"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = str(value).strip()
    return text if text and value is not None else "(none)"


def format_summary(summary: dict, width: int = 100) -> str:
    """``Recording.summary()`` as aligned ``key  value`` lines, long values wrapped."""
    keys = [str(k).replace("_", " ") for k in summary]
    pad = max(len(k) for k in keys) + 2 if keys else 0
    lines = []
    for key, value in zip(keys, summary.values()):
        text = _fmt_value(value)
        wrapped = textwrap.wrap(text, width=max(30, width - pad)) or [""]
        lines.append(f"  {key.ljust(pad)}{wrapped[0]}")
        lines += [f"  {' ' * pad}{w}" for w in wrapped[1:]]
    return "\n".join(lines)


def cmd_info(args) -> int:
    from .errors import NeuroMLError
    from .io.nwb import _is_recording, find_recordings, load_recording

    paths = []
    status = EXIT_OK
    for item in args.files:
        p = Path(item)
        if p.is_dir() and not _is_recording(p):
            found = find_recordings(p)
            if not found:
                print(f"neuroml info: no NWB recordings in folder '{item}'", file=sys.stderr)
                status = EXIT_FAILED
            paths += found
        else:
            paths.append(p)
    collected = []
    for i, path in enumerate(paths):
        try:
            with load_recording(path) as rec:
                summary = rec.summary()
        except (NeuroMLError, OSError) as err:
            print(f"neuroml info: {err}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        if args.json:
            collected.append({"file": str(path), **summary})
            continue
        if i:
            print()
        print(str(path))
        print(format_summary(summary))
    if args.json:
        print(json.dumps(collected, indent=2, default=str))
    return status


# ====================================================================== steps
def describe_step(spec, markdown: bool = False) -> str:
    """A step's summary, inputs, outputs and parameters (with types and defaults)."""
    from .pipeline.constraints import describe_all
    from .pipeline.registry import OUTPUT_KINDS

    def kind_note(o) -> str:
        if o.kind == "data":
            return "in memory only"
        if o.kind == "figure":
            return "figure"
        ext = OUTPUT_KINDS[o.kind]
        if o.kind == "metrics":
            return f"metrics, {ext}"
        return f"{o.kind}, {ext}{'' if o.save else ', saved only with save: true'}"

    if markdown:
        lines = [f"### `{spec.name}`", "", spec.summary, ""]
        lines += ["Inputs:", ""]
        lines += [f"- `{k}` (from `{v.default}`): {v.doc}" for k, v in spec.inputs.items()]
        if not spec.inputs:
            lines.append("- none")
        lines += ["", "Outputs:", ""]
        lines += [f"- `{k}` ({kind_note(o)}): {o.doc}" for k, o in spec.outputs.items()]
        lines += ["", "| parameter | allowed | default | meaning |", "|---|---|---|---|"]
        for k, p in spec.params.items():
            default = "required" if p.required else f"`{json.dumps(p.default)}`"
            lines.append(f"| `{k}` | {describe_all(p.constraints)} | {default} | {p.doc} |")
        if not spec.params:
            lines.append("| (none) | | | |")
        return "\n".join(lines) + "\n"
    lines = [f"{spec.name}", *textwrap.wrap(spec.summary, 96, initial_indent="    ",
                                            subsequent_indent="    ")]
    lines.append("  inputs:" + ("" if spec.inputs else " (none)"))
    for k, v in spec.inputs.items():
        lines.append(f"    {k} (from '{v.default}'): {v.doc}")
    lines.append("  outputs:")
    for k, o in spec.outputs.items():
        lines.append(f"    {k} ({kind_note(o)}): {o.doc}")
    lines.append("  params:" + ("" if spec.params else " (none)"))
    for k, p in spec.params.items():
        default = "required" if p.required else f"default {json.dumps(p.default)}"
        lines.append(f"    {k} = {describe_all(p.constraints)}; {default}")
        if p.doc:
            lines += textwrap.wrap(p.doc, 96, initial_indent="        ",
                                   subsequent_indent="        ")
    return "\n".join(lines)


def cmd_steps(args) -> int:
    from .pipeline.registry import available_steps, get_step, suggest

    names = args.names or available_steps()
    unknown = [n for n in names if n not in available_steps()]
    if unknown:
        for n in unknown:
            print(f"neuroml steps: unknown step {n!r}{suggest(n, available_steps())}; "
                  f"available: {', '.join(available_steps())}", file=sys.stderr)
        return EXIT_USAGE
    blocks = [describe_step(get_step(n), markdown=args.markdown) for n in names]
    print(("\n" if args.markdown else "\n\n").join(blocks))
    return EXIT_OK


# ====================================================================== validate
def cmd_validate(args) -> int:
    from .errors import ConfigError
    from .pipeline.config import load_pipeline

    status = EXIT_OK
    for path in args.pipelines:
        try:
            cfg = load_pipeline(path)
        except ConfigError as err:
            print(f"neuroml validate: {err}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        steps = " -> ".join(s.step for s in cfg.steps)
        print(f"{path}: ok, pipeline '{cfg.name}' ({steps}), hash {cfg.hash[:12]}")
    return status


# ====================================================================== run
def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _setup_console(quiet: bool, progress: bool):
    from .pipeline.progress import BarAwareHandler

    log = logging.getLogger("neuroml.pipeline")
    for h in list(log.handlers):
        if isinstance(h, BarAwareHandler):
            log.removeHandler(h)
    handler = BarAwareHandler(sys.stderr)
    tty = progress
    handler.setLevel(logging.WARNING if (quiet or tty) else logging.INFO)
    handler.setFormatter(logging.Formatter(
        "%(message)s" if tty else "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.propagate = False
    return handler


def cmd_run(args) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    from .errors import ConfigError, DeviceError, NeuroMLError, ParameterError, RecordingError
    from .pipeline.runner import run_pipeline

    executor = args.executor or ("dask" if args.scheduler else "serial")
    if args.scheduler and executor != "dask":
        print(f"neuroml run: --scheduler needs --executor dask (got --executor {executor})",
              file=sys.stderr)
        return EXIT_USAGE
    if executor == "serial" and args.workers not in (None, 1):
        print(f"neuroml run: --workers {args.workers} is ignored by the serial executor "
              "(use --executor processes or dask)", file=sys.stderr)
    progress = sys.stderr.isatty() and not args.no_progress and not args.quiet
    handler = _setup_console(args.quiet, progress)
    try:
        report = run_pipeline(args.pipeline, args.recordings, args.out, executor=executor,
                              workers=args.workers, scheduler=args.scheduler, device=args.device,
                              force=args.force, progress=progress, command=sys.argv)
    except (ConfigError, RecordingError, DeviceError, ParameterError) as err:
        print(f"neuroml run: {err}", file=sys.stderr)
        return EXIT_USAGE
    except NeuroMLError as err:
        print(f"neuroml run: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("neuroml run: interrupted; run the same command again to finish "
              "(recordings already done are skipped).", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        logging.getLogger("neuroml.pipeline").removeHandler(handler)

    out = report.out
    figs = sorted({p.suffix for r in report.results if r.ok for p in map(Path, r.outputs)
                   if p.suffix in (".png", ".pdf", ".svg")})
    example = next((out / r.recording_id / o for r in report.results if r.ok for o in r.outputs
                    if Path(o).suffix in (".png", ".pdf", ".svg")), None)
    print(f"Done in {report.seconds:.1f} s: {report.n_ok} recording(s) processed, "
          f"{report.n_skipped} already done, {report.n_failed} failed.")
    if report.n_failed:
        for r in report.results:
            if r.status == "failed":
                print(f"  FAILED {r.recording_id} at {r.failed_step}: {r.error}")
    print(f"  Figures ({', '.join(s[1:].upper() for s in figs) or 'none'}) and numbers: "
          f"{_shown(out)}/<recording>/" + (f"  (e.g. {_shown(example)})" if example else ""))
    print(f"  Summary:    {_shown(report.summary_path)}")
    print(f"  Provenance: {_shown(report.run_path)}    Log: {_shown(report.log_path)}")
    return EXIT_OK if report.ok else EXIT_FAILED


# ====================================================================== parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neuroml`` command."""
    parser = argparse.ArgumentParser(
        prog="neuroml",
        description="Neural recordings in, results out: run analysis pipelines over NWB "
                    "recordings, inspect recordings, list the pipeline steps.",
        epilog="Run 'neuroml COMMAND --help' for a command's options. "
               "Docs: docs/cli.md, docs/pipelines.md.",
    )
    parser.add_argument("--version", action="version", version=f"neuroml {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run a pipeline over recordings",
        description="Run a pipeline file over NWB recordings. Each recording's results go to "
                    "OUT/<recording-id>/ (arrays .nc, metrics .json, figures .png); "
                    "OUT/summary.csv has one row per recording, OUT/run.json the provenance, "
                    "OUT/run.log the log. Recordings already done under the same pipeline are "
                    "skipped; a failing recording is reported and the others finish. "
                    "Exit status 0 only when every recording succeeded.",
    )
    run.add_argument("pipeline", metavar="PIPELINE.yaml", help="the pipeline file")
    run.add_argument("recordings", metavar="RECORDINGS", nargs="+",
                     help="NWB files, Zarr NWB folders, or folders searched for them")
    run.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    run.add_argument("--executor", choices=("serial", "processes", "dask"), default=None,
                     help="where recordings are processed: one after the other (serial, the "
                          "default), local worker processes, or a Dask cluster (needs "
                          "pip install neuroml[distributed])")
    run.add_argument("--workers", "-j", type=_positive_int, default=None, metavar="N",
                     help="worker processes (processes) or LocalCluster workers (dask); "
                          "default: the CPU cores, at most one per recording")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="join a running Dask scheduler, e.g. tcp://host:8786 (implies "
                          "--executor dask; workers must see the same paths)")
    run.add_argument("--device", default="auto", metavar="DEVICE",
                     help="device for the estimators: auto (a GPU when there is one), cpu, "
                          "cuda or cuda:N (default: auto)")
    run.add_argument("--force", action="store_true",
                     help="redo every recording, also those already done")
    run.add_argument("--quiet", "-q", action="store_true",
                     help="print only warnings, errors and the final summary")
    run.add_argument("--no-progress", action="store_true",
                     help="plain log lines instead of a progress bar on a terminal")
    run.set_defaults(func=cmd_run)

    info = sub.add_parser(
        "info", help="show what recordings hold",
        description="Show what NWB recordings hold (units, spikes, trials and their columns, "
                    "interval tables, signals, session metadata) without reading the arrays.",
    )
    info.add_argument("files", metavar="FILE", nargs="+",
                      help="NWB files or Zarr NWB folders (folders are searched)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=cmd_info)

    steps = sub.add_parser(
        "steps", help="list the pipeline steps",
        description="List the steps a pipeline file can use: what each reads and writes, its "
                    "parameters, their allowed values and defaults.",
    )
    steps.add_argument("names", metavar="STEP", nargs="*", help="only these steps")
    steps.add_argument("--markdown", action="store_true", help="print Markdown (for docs)")
    steps.set_defaults(func=cmd_steps)

    validate = sub.add_parser(
        "validate", help="check pipeline files without running them",
        description="Validate pipeline files completely (steps, keys, types, values, data "
                    "flow) without touching any recording. Exit status 2 when one is invalid.",
    )
    validate.add_argument("pipelines", metavar="PIPELINE.yaml", nargs="+")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neuroml`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("neuroml: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `neuroml steps | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
