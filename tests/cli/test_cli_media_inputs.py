"""`batchgen plan` and `run` with file inputs: local files shown, bad ones refused (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from media_files import JPEG, image_to_video_spec, mp4, png, wav, write

from batchgen.cli import cli

NOTHING_SENT = "nothing was sent."


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write(tmp_path / "i2v.yaml", image_to_video_spec(10))


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_plan_shows_the_local_files_to_upload(tmp_path: Path, spec: Path) -> None:
    """The summary counts distinct local files and their bytes; --jobs shows each file's name;
    --json gives the count, the bytes and every job's files."""
    write(tmp_path / "cat.png", png())
    write(tmp_path / "dog.jpg", JPEG)
    write(tmp_path / "a.wav", wav())
    csv = write(
        tmp_path / "rows.csv",
        "prompt,image_url,audio_url\ncat,cat.png,a.wav\ncat again,cat.png,\ndog,dog.jpg,\n"
        "web,https://cdn.example.com/x.png,\n",
    )
    text = invoke("plan", str(csv), "--endpoint-spec", str(spec), "--jobs")
    assert text.exit_code == 0, text.output
    total = len(png()) + len(JPEG) + len(wav())
    assert f"local files: 3 files, {total:,} bytes, to upload" in text.stdout
    assert '"start_image_url": "cat.png", "audio_url": "a.wav"' in text.stdout
    assert '"start_image_url": "https://cdn.example.com/x.png"' in text.stdout
    data = json.loads(
        invoke("plan", str(csv), "--endpoint-spec", str(spec), "--json", "--jobs").stdout
    )
    assert data["local_files"] == {"count": 3, "bytes": total}
    first = data["job_list"][0]["files"]
    assert [(f["param"], f["path"], f["mime"]) for f in first] == [
        ("start_image_url", str(tmp_path / "cat.png"), "image/png"),
        ("audio_url", str(tmp_path / "a.wav"), "audio/wav"),
    ]
    assert data["job_list"][3]["files"] == []


def test_plan_without_local_files_says_nothing_of_uploads(tmp_path: Path, spec: Path) -> None:
    """Only URLs: no 'local files' line, and the JSON counts zero."""
    csv = write(tmp_path / "rows.csv", "prompt,image_url\na,https://x.org/a.png\n")
    result = invoke("plan", str(csv), "--endpoint-spec", str(spec))
    assert result.exit_code == 0, result.output
    assert "local files" not in result.stdout
    data = json.loads(invoke("plan", str(csv), "--endpoint-spec", str(spec), "--json").stdout)
    assert data["local_files"] == {"count": 0, "bytes": 0}


def test_bad_files_exit_2_at_their_cells_for_plan_and_run(tmp_path: Path, spec: Path) -> None:
    """plan and run both list every bad file at FILE:LINE and column, exit 2, send nothing."""
    write(tmp_path / "clip.mp4", mp4())
    (tmp_path / "shots").mkdir()
    csv = write(
        tmp_path / "rows.csv",
        "prompt,image_url\na,missing.png\nb,shots\nc,clip.mp4\nd,ftp://x.org/a.png\n"
        'e,"data:image/png;base64,%%%"\n',
    )
    expected = [
        f"{csv}:2: column 'image_url': missing.png: no such file (looked for "
        f"{tmp_path / 'missing.png'})",
        f"{csv}:3: column 'image_url': shots: is a folder, not a file",
        f"{csv}:4: column 'image_url': clip.mp4 is not an image (PNG, JPEG, WebP or GIF): "
        "it is an MP4 video",
        f"{csv}:5: column 'image_url': 'ftp://x.org/a.png': ftp:// addresses cannot be sent; "
        "give an https:// URL, a data: URI or a local path",
        f"{csv}:6: column 'image_url': this data: URI's base64 is not well-formed "
        "(Only base64 data is allowed)",
        f"5 problems found; {NOTHING_SENT}",
    ]
    out = tmp_path / "out"
    for command in (["plan"], ["run", "--mock", "--progress", "none", "--out", str(out)]):
        result = invoke(*command, str(csv), "--endpoint-spec", str(spec))
        assert result.exit_code == 2
        assert result.output.splitlines() == expected
    assert not out.exists()


def test_a_folder_of_images_plans_one_job_each(tmp_path: Path, spec: Path) -> None:
    """plan photos/ --set prompt=...: a job per image in name order, the left-out files in
    one warning; a glob works the same way."""
    photos = tmp_path / "photos"
    write(photos / "b.png", png())
    write(photos / "a.jpg", JPEG)
    write(photos / "a.txt", "orbit around the subject")
    write(photos / "readme.md", "# shots")
    args = ["--endpoint-spec", str(spec), "--set", "prompt=slow push-in", "--json", "--jobs"]
    result = invoke("plan", f"{photos}/", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jobs = data["job_list"]
    assert [(j["row"], j["line"], j["payload"]["prompt"]) for j in jobs] == [
        (1, None, "orbit around the subject"),
        (2, None, "slow push-in"),
    ]
    assert [Path(j["files"][0]["path"]).name for j in jobs] == ["a.jpg", "b.png"]
    assert data["warnings"] == [
        f"{photos}: 1 file left out, not an image (PNG, JPEG, WebP or GIF): readme.md"
    ]
    globbed = json.loads(invoke("plan", f"{photos}/*.png", *args).stdout)
    assert [j["payload"]["prompt"] for j in globbed["job_list"]] == ["slow push-in"]


def test_no_images_exit_2(tmp_path: Path, spec: Path) -> None:
    """An empty folder or a glob that matches nothing: one clear problem, exit 2."""
    (tmp_path / "empty").mkdir()
    result = invoke("plan", str(tmp_path / "empty"), "--endpoint-spec", str(spec))
    assert result.exit_code == 2
    assert result.output == (
        f"{tmp_path / 'empty'}: the folder is empty: no image to run\n1 problem found; "
        f"{NOTHING_SENT}\n"
    )
    pattern = f"{tmp_path}/empty/*.jpg"
    result = invoke("run", pattern, "--endpoint-spec", str(spec), "--mock", "--progress", "none")
    assert result.exit_code == 2
    assert result.output.startswith(f"{pattern}: matches no file\n")
