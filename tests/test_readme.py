"""The README's test command is the one CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    blocks, inside, cur = [], False, []
    for line in text.splitlines():
        if line.strip().startswith("```bash"):
            inside, cur = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(cur).strip())
        elif inside:
            cur.append(line)
    return blocks


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = _bash_blocks(quickstart)
    assert len(blocks) == 2, "the Quickstart has exactly two commands"
    install_and_run, test_command = blocks
    assert "neuroml run pipelines/quickstart.yaml datasets/sample" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
