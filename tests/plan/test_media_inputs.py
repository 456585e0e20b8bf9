"""File parameters: URLs and data: URIs sent as is, local files checked, hashed once, referenced."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from media_files import GIF, JPEG, MOV, MP3, WEBP, image_to_video_spec, mp4, png, wav, write

from batchgen.errors import InputError
from batchgen.plan.build import Plan, build_plan
from batchgen.plan.inputfiles import FileReader, InputFile, megabytes
from batchgen.plan.media import sniff
from batchgen.plan.params import Param

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """The image-to-video spec, images up to 10 KB."""
    return write(tmp_path / "i2v.yaml", image_to_video_spec(0.01))


def plan_of(spec: Path, csv: Path, **options: object) -> Plan:
    return build_plan(csv, endpoint_spec=spec, **options)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def problems(spec: Path, target: Path, **options: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        build_plan(target, endpoint_spec=spec, **options)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("data", "kind", "mime"),
    [
        (png(), "image", "image/png"),
        (JPEG, "image", "image/jpeg"),
        (WEBP, "image", "image/webp"),
        (GIF, "image", "image/gif"),
        (mp4(), "video", "video/mp4"),
        (MOV, "video", "video/quicktime"),
        (wav(), "audio", "audio/wav"),
        (MP3, "audio", "audio/mpeg"),
        (b"ID3\x04\x00" + MP3, "audio", "audio/mpeg"),
        (b"fLaC\x00\x00\x00\x22", "audio", "audio/flac"),
        (b"OggS\x00\x02" + bytes(20), "audio", "audio/ogg"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio", "audio/mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "", "image/heic"),
    ],
)
def test_formats_are_told_by_their_first_bytes(data: bytes, kind: str, mime: str) -> None:
    """Each format is named by its magic bytes, whatever the file is called."""
    media = sniff(data[:32])
    assert media is not None
    assert (media.kind, media.mime) == (kind, mime)


def test_text_and_adts_aac_are_no_format() -> None:
    """An HTML page and an AAC stream (MPEG sync bits, layer 0) are not taken for media."""
    assert sniff(b"<!DOCTYPE html><html>") is None
    assert sniff(b"\xff\xf1\x50\x80\x02\x1f\xfc") is None


def test_local_files_become_references_with_their_files(tmp_path: Path, spec: Path) -> None:
    """Each local file's payload value is sha256:<hex> of its bytes; Job.files holds the
    absolute path, size and MIME type; the key is computed from the referenced payload."""
    image, sound, clip = png(), wav(), mp4()
    write(tmp_path / "data" / "cat.png", image)
    write(tmp_path / "data" / "media" / "a.wav", sound)
    write(tmp_path / "data" / "media" / "a.mp4", clip)
    csv = write(
        tmp_path / "data" / "rows.csv",
        "prompt,image_url,audio_url,clip_url\ncat,cat.png,media/a.wav,./media/a.mp4\n",
    )
    job = plan_of(spec, csv).jobs[0]
    assert job.payload == {
        "prompt": "cat",
        "start_image_url": f"sha256:{sha(image)}",
        "audio_url": f"sha256:{sha(sound)}",
        "clip_url": f"sha256:{sha(clip)}",
    }
    media = tmp_path / "data" / "media"
    assert job.files == (
        InputFile(
            "start_image_url", str(tmp_path / "data" / "cat.png"), sha(image), 72, "image/png"
        ),
        InputFile("audio_url", str(media / "a.wav"), sha(sound), len(sound), "audio/wav"),
        InputFile("clip_url", str(media / "a.mp4"), sha(clip), len(clip), "video/mp4"),
    )


def test_urls_and_data_uris_are_sent_as_is(tmp_path: Path, spec: Path) -> None:
    """https:// and http:// URLs and a well-formed data: URI stay in the payload, no file."""
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    mp3 = "data:audio/mpeg;base64," + base64.b64encode(MP3).decode()
    csv = write(
        tmp_path / "rows.csv",
        f'prompt,image_url,audio_url\na,https://cdn.example.com/a.png,"{mp3}"\n'
        f'b,http://10.0.0.1/b.jpg,\nc,"{uri}",\n',
    )
    jobs = plan_of(spec, csv).jobs
    assert [j.payload["start_image_url"] for j in jobs] == [
        "https://cdn.example.com/a.png",
        "http://10.0.0.1/b.jpg",
        uri,
    ]
    assert jobs[0].payload["audio_url"] == mp3
    assert all(j.files == () for j in jobs)


def test_stem_names_a_video_after_its_first_file_input(tmp_path: Path, spec: Path) -> None:
    """{stem} is the first file parameter's name without extension: a local file's, a URL's
    last path part (decoded, query left out); a data: URI, or a job with no file, falls back
    on the prompt's slug."""
    write(tmp_path / "shots" / "cat.v2.png", png())
    uri = "data:image/png;base64," + base64.b64encode(png(1)).decode()
    csv = write(
        tmp_path / "rows.csv",
        "prompt,image_url,audio_url\n"
        f"a,shots/cat.v2.png,\nb,https://cdn.example.com/x/My%20Dog.JPG?sig=1,\n"
        f'Slow Pan,"{uri}",\n',
    )
    jobs = plan_of(spec, csv, filename="{stem}").jobs
    assert [j.filename for j in jobs] == ["cat.v2.mp4", "My Dog.mp4", "slow-pan.mp4"]
    text = build_plan(write(tmp_path / "t2v.csv", "prompt\nA cat\n"), filename="{stem}-{row}")
    assert text.jobs[0].filename == "a-cat-1.mp4"
    assert text.filename_template == "{stem}-{row}"


def test_key_follows_the_bytes_not_the_path(tmp_path: Path, spec: Path) -> None:
    """Renaming or moving the image keeps the job's key; changing its bytes changes it."""
    write(tmp_path / "cat.png", png())
    csv = write(tmp_path / "rows.csv", "prompt,image_url\ncat,cat.png\n")
    first = plan_of(spec, csv).jobs[0].key
    moved = tmp_path / "elsewhere" / "kitty.png"
    moved.parent.mkdir()
    (tmp_path / "cat.png").rename(moved)
    write(csv, f"prompt,image_url\ncat,{moved}\n")
    assert plan_of(spec, csv).jobs[0].key == first
    write(moved, png(shade=9))
    assert plan_of(spec, csv).jobs[0].key != first


def test_every_bad_file_is_reported_at_its_cell_at_once(
    tmp_path: Path, spec: Path, unreadable: Callable[[Path, bytes], Path]
) -> None:
    """Missing, a folder, unreadable, wrong kind, too large, empty, bad data: URIs and other
    schemes: each at FILE:LINE and column, all in one error."""
    data = tmp_path / "data"
    unreadable(data / "locked.png", png())
    write(data / "clip.mp4", mp4())
    write(data / "big.png", png(padding=20_000))
    write(data / "empty.png", b"")
    write(data / "page.png", "<html>not found</html>")
    (data / "shots").mkdir()
    (data / "loop.png").symlink_to("loop.png")
    big_uri = "data:image/png;base64," + base64.b64encode(png(padding=20_000)).decode()
    gif_uri = "data:image/gif;base64," + base64.b64encode(GIF).decode()
    cells = [
        "nope.png",
        "shots",
        "locked.png",
        "loop.png",
        "clip.mp4",
        "big.png",
        "empty.png",
        "page.png",
        '"data:image/png;base64,@@not base64@@"',
        '"data:image/png,rawbytes"',
        f'"{big_uri}"',
        "ftp://example.com/a.png",
        "file:///tmp/a.png",
        "https:///a.png",
    ]
    csv = write(data / "rows.csv", "prompt,image_url\n" + "".join(f"p,{c}\n" for c in cells))
    at = f"{csv}:{{}}: column 'image_url': "
    assert problems(spec, csv) == [
        at.format(2) + f"nope.png: no such file (looked for {data / 'nope.png'})",
        at.format(3) + "shots: is a folder, not a file",
        at.format(4) + "locked.png: cannot read: Permission denied",
        at.format(5) + "loop.png: cannot read: Too many levels of symbolic links",
        at.format(6) + f"clip.mp4 is {megabytes(len(mp4()))}, above the 0.01 MB limit of "
        "start_image_url",
        at.format(7) + "big.png is 0.02 MB, above the 0.01 MB limit of start_image_url",
        at.format(8) + "empty.png is not an image (PNG, JPEG, WebP or GIF): it is empty",
        at.format(9) + "page.png is not an image (PNG, JPEG, WebP or GIF): it holds text",
        at.format(10) + "this data: URI's base64 is not well-formed (Only base64 data is allowed)",
        at.format(11) + "'data:image/png,rawbytes': a data: URI must be data:<type>;base64,<data> "
        "(base64 only)",
        at.format(12) + "this data: URI is 0.02 MB, above the 0.01 MB limit of start_image_url",
        at.format(13) + "'ftp://example.com/a.png': ftp:// addresses cannot be sent; give an "
        "https:// URL, a data: URI or a local path",
        at.format(14) + "'file:///tmp/a.png': file:// addresses cannot be sent; give an "
        "https:// URL, a data: URI or a local path",
        at.format(15) + "'https:///a.png': a URL needs a host",
    ]
    audio = write(
        data / "audio.csv", f'prompt,image_url,audio_url\np,https://x.org/a.png,"{gif_uri}"\n'
    )
    assert problems(spec, audio) == [
        f"{audio}:2: column 'audio_url': this data: URI is not an audio file "
        "(WAV, MP3, FLAC, OGG or M4A): it is a GIF image"
    ]


@needs_fifo
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, spec: Path) -> None:
    """A FIFO named as an image is refused by name, never opened."""
    os.mkfifo(tmp_path / "pipe.png")
    csv = write(tmp_path / "rows.csv", "prompt,image_url\na,pipe.png\n")
    assert problems(spec, csv) == [
        f"{csv}:2: column 'image_url': pipe.png: is a FIFO (named pipe), not a file"
    ]


def test_a_file_is_read_once_however_it_is_named(tmp_path: Path) -> None:
    """Two spellings of one file are read once; a file changed since is read again."""
    image = write(tmp_path / "cat.png", png())
    (tmp_path / "link.png").symlink_to(image)
    param = Param("image_url", type="file", accept=("image",), max_bytes=10_000)
    (tmp_path / "sub").mkdir()
    reader = FileReader()
    first = reader.check(image, param, "cat.png")
    again = reader.check(tmp_path / "sub" / ".." / "link.png", param, "link.png")
    assert (first.sha256, again.sha256, reader.reads) == (sha(png()), sha(png()), 1)
    write(image, png(padding=10))
    assert reader.check(image, param, "cat.png").sha256 == sha(png(padding=10))
    assert reader.reads == 2


def test_rows_sharing_an_image_share_one_file(tmp_path: Path, spec: Path) -> None:
    """2,000 rows naming one image: one distinct local file in the summary; a copy with the
    same bytes is the same file to upload."""
    write(tmp_path / "cat.png", png())
    write(tmp_path / "copy.png", png())
    write(tmp_path / "dog.png", png(shade=3))
    lines = [f"p{i},cat.png" for i in range(2000)] + ["c,copy.png", "d,dog.png"]
    plan = plan_of(spec, write(tmp_path / "rows.csv", "prompt,image_url\n" + "\n".join(lines)))
    assert len(plan.jobs) == 2002
    assert plan.summary()["local_files"] == {"count": 2, "bytes": len(png()) + len(png(3))}


def test_relative_paths_follow_where_they_were_written(
    tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cells are relative to the input file's folder (a spec's rows: to the spec's), the spec's
    defaults and matrix to the spec's folder, --set to the current folder."""
    for where in ("specs", "specs/in", "cwd"):
        write(tmp_path / where / "a.png", png(shade=len(where)))
    job = write(
        tmp_path / "specs" / "job.yaml",
        f"endpoint_spec: {spec}\ninput: in/rows.csv\n"
        "defaults: {image_url: a.png}\nmatrix: {audio_url: [s.wav]}\n",
    )
    write(tmp_path / "specs" / "s.wav", wav())
    write(tmp_path / "specs" / "in" / "rows.csv", "prompt,image_url\ncell,a.png\ndefault,\n")
    monkeypatch.chdir(tmp_path / "cwd")
    paths = [[f.path for f in j.files] for j in build_plan(job).jobs]
    assert paths == [
        [str(tmp_path / "specs/in/a.png"), str(tmp_path / "specs/s.wav")],
        [str(tmp_path / "specs/a.png"), str(tmp_path / "specs/s.wav")],
    ]
    by_set = build_plan(job, sets={"image_url": "a.png"}).jobs[1].files[0]
    assert by_set.path == str(tmp_path / "cwd" / "a.png")
    rows = write(
        tmp_path / "specs" / "rows.yaml",
        f"endpoint_spec: {spec}\nrows:\n- {{prompt: r, image_url: in/a.png}}\n",
    )
    assert build_plan(rows).jobs[0].files[0].path == str(tmp_path / "specs/in/a.png")


def test_spec_and_set_problems_are_reported_once_where_written(tmp_path: Path, spec: Path) -> None:
    """A bad file in the spec's defaults or matrix, or in --set, is one problem at its line
    (or --set), however many rows use it; a good matrix value still reaches its jobs."""
    write(tmp_path / "ok.wav", wav())
    job = write(
        tmp_path / "job.yaml",
        f"endpoint_spec: {spec}\nrows:\n- prompt: a\n- prompt: b\n- prompt: c\n"
        "defaults:\n  image_url: gone.png\nmatrix:\n  audio_url: [ok.wav, gone.wav]\n",
    )
    assert problems(spec, job) == [
        f"{job}:7: field 'defaults.image_url': gone.png: no such file "
        f"(looked for {tmp_path / 'gone.png'})",
        f"{job}:9: field 'matrix.audio_url': gone.wav: no such file "
        f"(looked for {tmp_path / 'gone.wav'})",
    ]
    csv = write(tmp_path / "rows.csv", "prompt\na\nb\n")
    assert problems(spec, csv, sets={"image_url": "~/gone-batchgen.png"}) == [
        "--set: field 'image_url': ~/gone-batchgen.png: no such file "
        f"(looked for {Path('~/gone-batchgen.png').expanduser()})"
    ]
