"""Tests of neuroml.pipeline: config validation, outputs, runner, executors, kill/resume."""
