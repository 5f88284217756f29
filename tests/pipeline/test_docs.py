"""docs/pipelines.md and docs/cli.md stay in sync with the code."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from neuroml.cli import build_parser, describe_step
from neuroml.pipeline import available_steps, get_step, load_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", available_steps())
def test_pipelines_md_documents_every_step_as_the_code_declares_it(name):
    text = (ROOT / "docs" / "pipelines.md").read_text()
    if name.startswith("test_"):
        pytest.skip("a step registered by the tests")
    block = describe_step(get_step(name), markdown=True)
    assert block in text, f"docs/pipelines.md is out of date for step {name!r}: " \
                          "regenerate the Steps section with `neuroml steps --markdown`"


def test_cli_md_documents_every_command_and_option():
    text = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        assert f"## `neuroml {command}`" in text
        for action in subparser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, (command, option)


def test_pipeline_files_named_in_the_docs_exist_and_are_valid():
    text = (ROOT / "docs" / "pipelines.md").read_text()
    for name in ("quickstart.yaml", "decoding.yaml", "representation.yaml"):
        assert f"`{name}`" in text
        path = ROOT / "pipelines" / name
        if path.exists():
            assert load_pipeline(path).steps
