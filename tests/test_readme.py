"""The README's examples run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from runs import subprocess_env

REPO = Path(__file__).resolve().parent.parent


def python_blocks(markdown: str) -> list[str]:
    """The fenced ``python`` code blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from this checkout in ``cwd``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_library_example_runs(tmp_path: Path) -> None:
    """The 'As a library' example plans the example prompts and runs them all on the emulator."""
    (example,) = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    done = python(["-c", example], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["done", "8"]
    assert len(list((tmp_path / "out" / "lib" / "videos").glob("*.mp4"))) == 8


def test_comparison_example_plans_as_shown() -> None:
    """`batchgen plan jobs/compare.yaml` prints the lines the README's comparison shows."""
    done = python(["-m", "batchgen", "plan", "jobs/compare.yaml"], REPO)
    assert done.returncode == 0, done.stderr
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ batchgen plan jobs/compare.yaml\n", 1)[1].split("```", 1)[0]
    printed = [
        line for line in done.stdout.splitlines() if not line.startswith(("input:", "output:"))
    ]
    assert [line for line in shown.splitlines() if not line.startswith("input:")] == printed


def test_the_endpoints_page_lists_every_builtin_and_the_readme_counts_them() -> None:
    """docs/endpoints.md's catalog has a row for each built-in spec, and the README's count
    of built-ins is the catalog's."""
    from batchgen.plan.endpoint import builtin_specs

    specs = builtin_specs()
    page = (REPO / "docs" / "endpoints.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1] for line in page.splitlines() if line.startswith("| `")}
    assert rows == set(specs)
    active = sum(spec.status == "active" for spec in specs.values())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{len(specs)} fal video endpoints are built in ({active} active)" in readme
