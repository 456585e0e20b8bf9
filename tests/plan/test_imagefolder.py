"""A folder or glob of images as input: one job per image, prompts from NAME.txt beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from media_files import GIF, JPEG, WEBP, mp4, png, write

from batchgen.errors import InputError
from batchgen.plan.build import Plan, build_plan

# Kling 2.6's shape: the image parameter is start_image_url, and image_url is its alias.
SPEC = """\
id: me/image-to-video
parameters:
  prompt: {type: string, required: true}
  start_image_url: {type: file, required: true, accept: [image], aliases: [image_url]}
price: {flat_usd: 0.1}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write(tmp_path / "i2v.yaml", SPEC)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """b.png, a.jpg with a.txt, c.webp; a PDF, an MP4, a text file named like an image, a
    hidden file and a subfolder with one more image."""
    folder = tmp_path / "photos"
    write(folder / "b.png", png(1))
    write(folder / "a.jpg", JPEG)
    write(folder / "a.txt", "  a red square \n")
    write(folder / "c.webp", WEBP)
    write(folder / "notes.pdf", "%PDF-1.4")
    write(folder / "clip.mp4", mp4())
    write(folder / "fake.png", "<html>404</html>")
    write(folder / ".hidden.png", png(2))
    write(folder / "sub" / "d.png", png(3))
    return folder


def plan_of(spec: Path, target: Path | str, **options: object) -> Plan:
    return build_plan(target, endpoint_spec=spec, **options)  # type: ignore[arg-type]


def problems(spec: Path, target: Path | str, **options: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        plan_of(spec, target, **options)
    return [str(p) for p in caught.value.problems]


def names(plan: Plan) -> list[str]:
    return [Path(job.files[0].path).name for job in plan.jobs]


def test_folder_gives_one_job_per_image_in_name_order(spec: Path, photos: Path) -> None:
    """Images by their bytes, sorted by name; NAME.txt is the prompt, --set the rest's; the
    others are left out with one warning; rows are positions, lines None."""
    plan = plan_of(spec, photos, sets={"prompt": "slow push-in"})
    assert names(plan) == ["a.jpg", "b.png", "c.webp"]
    prompts = [j.payload["prompt"] for j in plan.jobs]
    assert prompts == ["a red square", "slow push-in", "slow push-in"]
    assert [(j.row, j.line) for j in plan.jobs] == [(1, None), (2, None), (3, None)]
    assert [j.files[0].mime for j in plan.jobs] == ["image/jpeg", "image/png", "image/webp"]
    assert all(j.payload["start_image_url"] == j.files[0].ref for j in plan.jobs)
    assert plan.warnings == [
        f"{photos}: 3 files left out, not an image (PNG, JPEG, WebP or GIF): clip.mp4, "
        f"fake.png, notes.pdf; 1 subfolder not looked into (give '{photos}/**/*' to include them)"
    ]
    assert plan.output_dir == Path("out/photos")
    assert plan.records == 3


def test_an_image_without_a_prompt_is_named(spec: Path, photos: Path) -> None:
    """With no NAME.txt and no --set prompt, the problem names the image file and the two
    ways to give it a prompt (a folder has no columns)."""
    tail = "beside it, or give every image one with --set prompt=..."
    assert problems(spec, photos) == [
        f"{photos / 'b.png'}: no prompt for this image: write one in b.txt {tail}",
        f"{photos / 'c.webp'}: no prompt for this image: write one in c.txt {tail}",
    ]


def test_globs_pick_images_in_order(spec: Path, photos: Path) -> None:
    """'photos/*.png' takes only the PNG images; '**' looks into subfolders; out/ is named
    after the glob's folder."""
    only_png = plan_of(spec, f"{photos}/*.png", sets={"prompt": "p"})
    assert names(only_png) == ["b.png"]
    assert only_png.output_dir == Path("out/photos")
    assert only_png.warnings == [
        f"{photos}/*.png: 1 file left out, not an image (PNG, JPEG, WebP or GIF): fake.png"
    ]
    deep = plan_of(spec, f"{photos}/**/*.png", sets={"prompt": "p"})
    assert [j.files[0].path for j in deep.jobs] == [
        str(photos / "b.png"),
        str(photos / "sub" / "d.png"),
    ]


def test_a_job_spec_input_may_be_a_folder_or_a_glob(tmp_path: Path, spec: Path) -> None:
    """input: a folder or glob, relative to the spec; its defaults give the prompt."""
    write(tmp_path / "shots" / "one.png", png())
    write(tmp_path / "shots" / "two.png", png(5))
    write(tmp_path / "shots" / "two.txt", "dolly zoom")
    for given in ("shots", "shots/*.png"):
        job = write(
            tmp_path / "jobs" / "i2v.yaml",
            f"endpoint_spec: {spec}\ninput: ../{given}\ndefaults: {{prompt: orbit}}\n",
        )
        plan = build_plan(job)
        assert [j.payload["prompt"] for j in plan.jobs] == ["orbit", "dolly zoom"]


def test_no_image_at_all_is_a_clear_problem(tmp_path: Path, spec: Path) -> None:
    """An empty folder, a glob matching nothing, and a folder of no images are refused."""
    (tmp_path / "empty").mkdir()
    write(tmp_path / "docs" / "a.pdf", "%PDF")
    assert problems(spec, tmp_path / "empty") == [
        f"{tmp_path / 'empty'}: the folder is empty: no image to run"
    ]
    assert problems(spec, f"{tmp_path}/empty/*.png") == [f"{tmp_path}/empty/*.png: matches no file"]
    assert problems(spec, tmp_path / "docs") == [
        f"{tmp_path / 'docs'}: no image in it: 1 file left out, not an image "
        "(PNG, JPEG, WebP or GIF): a.pdf"
    ]


def test_a_folder_needs_an_endpoint_that_takes_an_image(photos: Path) -> None:
    """With a text-to-video endpoint (or an unknown one), a folder of images is refused."""
    for endpoint in (None, "me/unknown"):
        with pytest.raises(InputError) as caught:
            build_plan(photos, endpoint=endpoint, sets={"prompt": "p"})
        assert "a folder of images needs an endpoint that takes an image" in str(caught.value)


def test_bad_prompt_files_and_unreadable_images_are_reported(
    tmp_path: Path, spec: Path, unreadable: Callable[[Path, bytes], Path]
) -> None:
    """A NAME.txt that is not UTF-8 is named at its line, an image that cannot be read by
    name, all at once."""
    folder = tmp_path / "photos"
    unreadable(folder / "0.png", png())
    write(folder / "a.png", png())
    write(folder / "a.txt", b"fine\n\xff\xfe bad\n")
    write(folder / "b.png", png(4))
    write(folder / "b.txt", b"ok\x00")
    assert problems(spec, folder) == [
        f"{folder / '0.png'}: cannot read: Permission denied",
        f"{folder / 'a.txt'}:2: not UTF-8 text (byte 0xff); save it as UTF-8",
        f"{folder / 'b.txt'}:1: a NUL byte: this is a binary file, not text",
    ]


def test_input_digest_follows_the_images_and_prompts(tmp_path: Path, spec: Path) -> None:
    """A folder copied elsewhere is the same input; a changed prompt makes another one."""
    first = tmp_path / "a" / "photos"
    write(first / "x.png", png())
    write(first / "x.txt", "pan left")
    second = tmp_path / "b" / "photos"
    write(second / "x.png", png())
    write(second / "x.txt", "pan left")
    assert plan_of(spec, first).input_sha256 == plan_of(spec, second).input_sha256
    write(second / "x.txt", "pan right")
    assert plan_of(spec, first).input_sha256 != plan_of(spec, second).input_sha256


def test_a_glob_does_not_follow_links_to_folders(tmp_path: Path, spec: Path) -> None:
    """'**' walks real subfolders only: two links back up (a loop) give each image once, at
    once, instead of thousands of paths; hidden files stay out of a glob as of a folder."""
    folder = tmp_path / "shots"
    write(folder / "x.png", png())
    write(folder / "deep" / "y.png", png(7))
    write(folder / ".hidden.png", png(8))
    write(folder / "deep" / ".cache" / "z.png", png(9))
    (folder / "deep" / "up").symlink_to("..")
    (folder / "deep" / "up2").symlink_to("..")
    plan = plan_of(spec, f"{folder}/**/*.png", sets={"prompt": "p"})
    assert [j.files[0].path for j in plan.jobs] == [
        str(folder / "deep" / "y.png"),
        str(folder / "x.png"),
    ]
    assert plan.warnings == []


def test_folder_videos_are_named_after_their_images(spec: Path, photos: Path) -> None:
    """A folder's default name is {stem}.mp4; a stem two images share (by case and extension,
    or in two subfolders) gets the job's key added to the later one; --filename still wins."""
    plan = plan_of(spec, photos, sets={"prompt": "p"})
    assert plan.filename_template == "{stem}"
    assert [j.filename for j in plan.jobs] == ["a.mp4", "b.mp4", "c.mp4"]
    write(photos / "B.gif", GIF)
    write(photos / "sub" / "a.png", png(4))
    deep = plan_of(spec, f"{photos}/**/*", sets={"prompt": "p"})
    assert [(Path(j.files[0].path).name, j.filename) for j in deep.jobs] == [
        ("B.gif", "B.mp4"),
        ("a.jpg", "a.mp4"),
        ("b.png", f"b-{deep.jobs[2].key}.mp4"),
        ("c.webp", "c.mp4"),
        ("a.png", f"a-{deep.jobs[4].key}.mp4"),
        ("d.png", "d.mp4"),
    ]
    again = plan_of(spec, f"{photos}/**/*", sets={"prompt": "p"})
    assert [j.filename for j in again.jobs] == [j.filename for j in deep.jobs]
    named = plan_of(spec, photos, sets={"prompt": "p"}, filename="{row}-{stem}")
    assert [j.filename for j in named.jobs] == ["1-B.mp4", "2-a.mp4", "3-b.mp4", "4-c.mp4"]


def test_image_names_become_safe_video_names(tmp_path: Path, spec: Path) -> None:
    """An image's name passes the rules every file name does: no control or invisible
    characters, no reserved device name, Unicode kept (NFC)."""
    folder = tmp_path / "odd"
    odd = ("con.png", "evil\u202egpm.png", "line\nbreak.png", "Re\u0301sume\u0301 1.png")
    for shade, name in enumerate(odd):
        write(folder / name, png(shade))
    plan = plan_of(spec, folder, sets={"prompt": "p"})
    assert sorted(j.filename for j in plan.jobs) == sorted(
        ["_con.mp4", "evilgpm.mp4", "line_break.mp4", "R\u00e9sum\u00e9 1.mp4"]
    )
