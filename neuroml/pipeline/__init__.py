"""Pipelines: run declarative analysis pipelines over folders of recordings.

A pipeline file (YAML, see ``docs/pipelines.md``) names steps from a registry and
their parameters; :func:`load_pipeline` validates the whole file before any data is
touched, and :func:`run_pipeline` runs it over recordings with a serial, local-process
or Dask executor, writing per-recording results, ``summary.csv`` and ``run.json``.

>>> from neuroml.pipeline import load_pipeline, run_pipeline      # doctest: +SKIP
>>> report = run_pipeline("pipelines/quickstart.yaml", "datasets/sample", "results/")  # doctest: +SKIP
>>> report.ok                                                      # doctest: +SKIP
True
"""

from .config import PipelineConfig, StepConfig, load_pipeline, parse_pipeline
from .constraints import ListOf, Pair
from .executors import DaskExecutor, Executor, ProcessExecutor, SerialExecutor, make_executor
from .registry import (
    Input,
    Output,
    Param,
    StepContext,
    StepSpec,
    available_steps,
    get_step,
    register_step,
)
from .runner import RecordingResult, RunReport, process_recording, run_pipeline

__all__ = [
    "load_pipeline",
    "parse_pipeline",
    "PipelineConfig",
    "StepConfig",
    "Pair",
    "ListOf",
    "register_step",
    "get_step",
    "available_steps",
    "Param",
    "Input",
    "Output",
    "StepContext",
    "StepSpec",
    "run_pipeline",
    "process_recording",
    "RunReport",
    "RecordingResult",
    "Executor",
    "SerialExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "make_executor",
]
