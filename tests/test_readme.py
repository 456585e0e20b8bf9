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
    """docs/library.md's example plans the example prompts and runs them all on the emulator."""
    (example,) = python_blocks((REPO / "docs" / "library.md").read_text(encoding="utf-8"))
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    done = python(["-c", example], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["done", "8"]
    assert len(list((tmp_path / "out" / "lib" / "videos").glob("*.mp4"))) == 8


def test_comparison_example_plans_as_shown() -> None:
    """`batchgen plan jobs/compare.yaml` prints the lines docs/inputs.md's comparison shows."""
    done = python(["-m", "batchgen", "plan", "jobs/compare.yaml"], REPO)
    assert done.returncode == 0, done.stderr
    readme = (REPO / "docs" / "inputs.md").read_text(encoding="utf-8")
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


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    """Each relative link (and image) of README.md and docs/*.md names a file that exists,
    and its #anchor, if any, a heading of that page; the README stays short."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https://..., mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
    assert len(pages) >= 5
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found
