"""What batchgen opens as input: regular files only, never blocking, memory bounded."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.errors import InputError
from batchgen.plan.inputs import read_table
from batchgen.plan.yamlload import Loader, load_yaml

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def _plan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plan", *args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


@needs_fifo
def test_fifo_input_is_named_and_never_read(tmp_path: Path) -> None:
    """A FIFO given as input (directly or through a spec) is named as such, without blocking."""
    fifo = tmp_path / "prompts.csv"
    os.mkfifo(fifo)
    spec = tmp_path / "job.yaml"
    spec.write_text("endpoint: x/y\ninput: prompts.csv\n")
    started = time.monotonic()
    assert _plan(str(fifo)) == (2, f"{fifo}: is a FIFO (named pipe), not a file\n" + _ONE)
    code, output = _plan(str(spec))
    assert code == 2
    assert f"{spec}:2: field 'input': prompt file {fifo} is a FIFO (named pipe)" in output
    code, output = _plan(str(spec), "--endpoint-spec", str(fifo))
    assert code == 2
    assert f"{fifo}: is a FIFO (named pipe), not a file" in output
    assert time.monotonic() - started < 5


_ONE = "1 problem found; nothing was sent.\n"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_device_input_is_named(tmp_path: Path) -> None:
    """A device, directly, via a symlink named like a CSV, or as endpoint spec, is refused by
    name; a folder is read as images, and one with none is refused saying so."""
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    assert _plan("/dev/zero") == (2, f"/dev/zero: is a character device, not a file\n{_ONE}")
    assert _plan(str(link)) == (2, f"{link}: is a character device, not a file\n{_ONE}")
    code, output = _plan(str(link), "--endpoint-spec", "/dev/zero")
    assert (code, output) == (2, f"/dev/zero: is a character device, not a file\n{_ONE}")
    code, output = _plan(str(tmp_path))
    assert code == 2
    assert f"{tmp_path}: no image in it: 1 file left out" in output


def test_one_endless_line_is_refused_at_its_line_with_little_memory(tmp_path: Path) -> None:
    """A line past the bound is refused at its line, reading only a few lines' worth."""
    path = tmp_path / "huge.csv"
    with path.open("w") as handle:
        handle.write('prompt\nok\n"')
        for _ in range(100):
            handle.write("x" * 10_000)  # one 1 MB cell, written as a stream
        handle.write('"\n')
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as caught:
            read_table(path, max_line=20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        f"{path}:3: this line is longer than 20,000 characters; "
        "a cell that long is not a prompt (is this the right file?)"
    )
    assert peak < 400_000


def test_lines_up_to_the_bound_are_read(tmp_path: Path) -> None:
    """A line of exactly the bound, CRLF-ended, is an ordinary line."""
    path = tmp_path / "edge.csv"
    path.write_bytes(b"prompt\r\n" + b"y" * 50 + b"\r\nz\r\n")
    table = read_table(path, max_line=50)
    assert [r.values["prompt"] for r in table.records] == ["y" * 50, "z"]


def test_default_line_bound_applies_from_the_cli(tmp_path: Path) -> None:
    """Without a limit given, a line over 1 MiB characters is refused with its line."""
    path = tmp_path / "big.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "' + "x" * (1 << 20) + '"}\n')
    code, output = _plan(str(path))
    assert code == 2
    assert f"{path}:2: this line is longer than 1,048,576 characters" in output


def test_alias_bound_is_injectable_and_counts_expansion() -> None:
    """Aliases are fine up to the bound, refused past it, whatever the document's size."""

    class Small(Loader):
        max_alias_values = 10

    text = "a: &a [1, 2, 3]\nb: *a\nc: *a\n"  # two aliases of a 4-value list: 8
    assert load_yaml("x.yaml", text) == {"a": [1, 2, 3], "b": [1, 2, 3], "c": [1, 2, 3]}
    loader = Small(text + "d: *a\n")
    with pytest.raises(Exception, match="stand for more than 10 values"):
        loader.get_single_data()
    loader.dispose()


def test_base_sixty_stays_text_and_bombs_are_refused_fast() -> None:
    """16:9 stays text; a nine-level billion laughs is refused in well under a second."""
    assert load_yaml("x.yaml", "- 16:9\n- 2:1\n- 0x10\n") == ["16:9", "2:1", 16]
    ladder = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    ladder += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    with pytest.raises(InputError, match=r"x\.yaml:\d+: refused: its aliases"):
        load_yaml("x.yaml", "\n".join(ladder))
    assert time.monotonic() - started < 0.5
