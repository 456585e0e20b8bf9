"""`batchgen run` refuses a bad key or a base URL with credentials: exit 2, nothing sent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from runs import prompts, rows

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus

FAST = ["--progress", "none", "--time-scale", "0.001"]


def files_holding(folder: Path, secret: bytes) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_bad_key_file_exits_2_then_the_run_is_clean(tmp_path: Path) -> None:
    """A two-line key file: exit 2 naming the file, the key never shown, no job left
    `submitting`; the next run with a good key is done with nothing flagged duplicate."""
    source, out, key = prompts(tmp_path, 2), tmp_path / "out", tmp_path / "key.txt"
    key.write_text("sk-first-secret\nsk-second-secret\n")
    args = ["run", str(source), "--mock", "--out", str(out), *FAST]
    refused = CliRunner().invoke(cli, [*args, "--api-key-file", str(key)])
    assert refused.exit_code == 2, refused.output
    assert f"error: the API key file {key} holds 2 lines" in refused.output
    assert "secret" not in refused.output
    assert not (out / "batchgen.db").exists() or all(
        job.status is JobStatus.PENDING for job in rows(out)
    )
    key.write_text("sk-first-secret\n")
    done = CliRunner().invoke(cli, [*args, "--api-key-file", str(key)])
    assert done.exit_code == 0, done.output
    assert [(job.status, job.possibly_duplicate) for job in rows(out)] == [
        (JobStatus.DONE, False)
    ] * 2


def test_key_with_control_characters_in_the_environment_exits_2(tmp_path: Path) -> None:
    """A key variable holding a newline or a control character: exit 2, no traceback."""
    source, out = prompts(tmp_path, 1), tmp_path / "out"
    args = ["run", str(source), "--provider", "fal", "--base-url", "http://127.0.0.1:9"]
    for value in ("sk-one\nsk-two", "sk-\x07one"):
        result = CliRunner().invoke(cli, [*args, "--out", str(out), *FAST], env={"FAL_KEY": value})
        assert result.exit_code == 2, result.output
        assert "error: the environment variable FAL_KEY holds" in result.output
        assert "sk-" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_base_url_with_credentials_exits_2_and_is_written_nowhere(tmp_path: Path) -> None:
    """user:password@ from --base-url or the spec's run.base_url: exit 2, the password neither
    printed nor written under the output folder."""
    source, out = prompts(tmp_path, 1), tmp_path / "out"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"input: {source.name}\noutput: out\n"
        "run: {provider: mock, base_url: 'http://alice:hunter2@127.0.0.1:9'}\n"
    )
    flag = ["run", str(source), "--provider", "mock", "--out", str(out)]
    for args in (
        [*flag, "--base-url", "http://alice:hunter2@127.0.0.1:9"],
        ["run", str(spec)],
        [*flag, "--mock", "--base-url", "http://alice:hunter2@127.0.0.1:9"],
    ):
        result = CliRunner().invoke(cli, [*args, *FAST])
        assert result.exit_code == 2, result.output
        assert "error: base URL http://***@127.0.0.1:9 holds a user name or password" in (
            result.output
        )
        assert "hunter2" not in result.output
        assert files_holding(tmp_path, b"hunter2") == [spec.name]


def test_upload_fal_without_fal_key_exits_2(tmp_path: Path) -> None:
    """--upload fal with no FAL_KEY: exit 2 naming the variable, nothing sent."""
    source, out = prompts(tmp_path, 1), tmp_path / "out"
    args = ["run", str(source), "--provider", "quickrouter", "--base-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(
        cli,
        [*args, "--upload", "fal", "--out", str(out), *FAST],
        env={"QUICKROUTER_API_KEY": "t", "FAL_KEY": ""},
    )
    assert result.exit_code == 2, result.output
    assert "error: --upload fal needs a fal key: set the environment variable FAL_KEY" in (
        result.output
    )


def test_files_too_big_for_a_provider_without_storage_exit_2(tmp_path: Path) -> None:
    """Through quickrouter (no storage), an image above the data-URI cap: exit 2 naming the
    file and --upload fal, nothing sent, no folder made."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    with (photos / "big.png").open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
        handle.truncate(6_000_000)
    args = ["run", str(photos), "--endpoint", "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"]
    args += ["--set", "prompt=slow push-in", "--provider", "quickrouter", "--yes"]
    args += ["--base-url", "http://127.0.0.1:9", "--out", str(out), *FAST]
    result = CliRunner().invoke(cli, args, env={"QUICKROUTER_API_KEY": "t"})
    assert result.exit_code == 2, result.output
    assert f"{photos / 'big.png'}: is 5.7 MiB, above the 4 MiB a data: URI may carry" in (
        result.output
    )
    assert "pass --upload fal (with FAL_KEY set)" in result.output
    assert not out.exists()


def test_no_key_names_the_variable_and_the_free_way_to_try(tmp_path: Path) -> None:
    """`batchgen run mine.csv` with no FAL_KEY: exit 2 naming FAL_KEY and the free --mock."""
    source = prompts(tmp_path, 2)
    refused = CliRunner().invoke(
        cli, ["run", str(source), "--out", str(tmp_path / "out"), *FAST], env={"FAL_KEY": None}
    )
    assert refused.exit_code == 2, refused.output
    assert "no API key: set the environment variable FAL_KEY" in refused.output
    assert "or add --mock to try this batch on the emulator, free" in refused.output
