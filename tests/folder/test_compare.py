"""compare.html: prompts side by side across models and matrix variants, picks kept per batch."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from folders import (
    KLING,
    SORA,
    T0,
    VEO_FAST,
    Folder,
    make_compare_folder,
    make_folder,
    playable_mp4,
)
from headless import Browser

from batchgen.cli import cli
from batchgen.folder.compare import batch_identity, short_name, short_names
from batchgen.folder.report import write_pages
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.plan.build import build_plan

EVIL = '</script><script>alert("x")</script><img src=x onerror=\'alert(2)\'> "quoted" & co'
PROMPTS = ["a calm sea at dawn", "a red fox in fresh snow", "neon city in the rain", "waterfall"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary")


def blob(page: str) -> dict[str, Any]:
    """The JSON the compare page's script draws from."""
    match = re.search(r'<script type="application/json" id="compare">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def two_models(tmp_path: Path, prompts: list[str] = PROMPTS, name: str = "out") -> Folder:
    """Four rows on Kling and Veo: seven done (real MP4s), one failed; latencies 60 s up."""
    folder = make_compare_folder(tmp_path, prompts, [KLING, VEO_FAST], name=name)
    for i, key in enumerate(folder.keys[:-1]):
        folder.done(key, latency=60 + i, content=playable_mp4(key))
    folder.failed(folder.keys[-1], "content <b>policy</b>", error_type="content_policy_violation")
    return folder


def test_two_models_give_a_line_per_row_and_a_column_per_model(tmp_path: Path) -> None:
    """A line per input row with its prompt; a column per model, named short; each cell its
    video in videos/, list price and spend, latency; or its status and error."""
    folder = two_models(tmp_path)
    pages = write_pages(folder.path, now=T0)
    assert pages.compare == folder.path / "compare.html"
    data = blob(pages.compare.read_text(encoding="utf-8"))
    assert [c["label"] for c in data["columns"]] == ["kling v2.5-turbo pro", "veo3.1 fast"]
    assert [c["endpoint"] for c in data["columns"]] == [KLING, "fal-ai/veo3.1/fast"]
    assert data["columns"][0]["stats"] == "4/4 done · spent $1.40 · median 1m03s"
    assert data["columns"][1]["stats"] == "3/4 done · spent $3.60 · median 1m03s"
    assert [line["prompt"] for line in data["lines"]] == PROMPTS
    assert [line["row"] for line in data["lines"]] == [1, 2, 3, 4]
    kling, veo = data["lines"][0]["cells"]
    assert folder.ledger.get(kling["key"]).endpoint == KLING
    assert folder.ledger.get(veo["key"]).endpoint == "fal-ai/veo3.1/fast"
    assert kling["file"].startswith("videos/")
    assert (folder.path / kling["file"]).is_file()
    assert (kling["money"], kling["latency"]) == ("est. $0.35 · spent $0.35", "1m00s")
    assert veo["money"] == "est. $1.20 · spent $1.20"
    failed = data["lines"][3]["cells"][1]
    assert (failed["status"], failed["file"]) == ("failed", None)
    assert failed["error"] == "content <b>policy</b>"
    assert failed["money"] == "est. $1.20"  # refused: not spent
    report = pages.report.read_text(encoding="utf-8")
    assert '<a href="compare.html"' in report
    assert 'title="4 rows × 2 columns"' in report
    gallery = re.search(r'<script type="application/json" id="jobs">(.*?)</script>', report, re.S)
    assert gallery is not None
    cards = json.loads(gallery.group(1))
    assert [card["params"][0] for card in cards["jobs"][:2]] == [
        ["endpoint", KLING],
        ["endpoint", "fal-ai/veo3.1/fast"],
    ]
    assert {"name": "endpoint", "values": [KLING, "fal-ai/veo3.1/fast"]} in cards["filters"]


def test_a_matrix_names_its_columns_by_the_values_that_differ(tmp_path: Path) -> None:
    """One model with a matrix: a column per combination, labelled with its values; what every
    job shares is named once in the header."""
    folder = make_compare_folder(
        tmp_path, PROMPTS[:2], [KLING], matrix={"aspect_ratio": ["16:9", "9:16"]}
    )
    page = write_pages(folder.path, now=T0).compare
    assert page is not None
    text = page.read_text(encoding="utf-8")
    data = blob(text)
    assert [c["label"] for c in data["columns"]] == [
        "kling v2.5-turbo pro aspect_ratio=16:9",
        "kling v2.5-turbo pro aspect_ratio=9:16",
    ]
    assert [c["values"] for c in data["columns"]] == [
        [["aspect_ratio", "16:9"]],
        [["aspect_ratio", "9:16"]],
    ]
    assert len(data["lines"]) == 2
    assert all(len(line["cells"]) == 2 and None not in line["cells"] for line in data["lines"])
    assert "Same for every job: " in text
    assert "duration: 5" in text
    assert data["lines"][0]["params"] == []


def test_models_times_a_matrix_ignores_what_only_the_models_set(tmp_path: Path) -> None:
    """Two models × two aspect ratios make four columns, labelled by model and ratio only:
    each model's own defaults (its duration, its parameters) are not variants."""
    folder = make_compare_folder(
        tmp_path, PROMPTS[:1], [KLING, VEO_FAST], matrix={"aspect_ratio": ["16:9", "9:16"]}
    )
    page = write_pages(folder.path, now=T0).compare
    assert page is not None
    labels = [c["label"] for c in blob(page.read_text(encoding="utf-8"))["columns"]]
    assert labels == [
        "kling v2.5-turbo pro aspect_ratio=16:9",
        "kling v2.5-turbo pro aspect_ratio=9:16",
        "veo3.1 fast aspect_ratio=16:9",
        "veo3.1 fast aspect_ratio=9:16",
    ]


def test_a_single_model_run_gets_no_compare_view(tmp_path: Path) -> None:
    """One model, no matrix: the report as before, no compare.html, no link to one."""
    folder = make_folder(tmp_path, "prompt,duration\na,5\nb,10\n")
    folder.done(folder.keys[0])
    pages = write_pages(folder.path, now=T0)
    assert pages.compare is None
    assert not (folder.path / "compare.html").exists()
    assert "compare.html" not in pages.report.read_text(encoding="utf-8")


def test_rows_naming_one_model_each_line_up_by_prompt(tmp_path: Path) -> None:
    """With a model per row (an endpoint column), rows of the same prompt share a line, and
    what differs between a prompt's rows on one model becomes a column."""
    source = tmp_path / "rows.csv"
    source.write_text("prompt,aspect_ratio\nsea,16:9\nfox,16:9\nsea,9:16\n", encoding="utf-8")
    (tmp_path / "veo.yaml").write_text(VEO_FAST, encoding="utf-8")
    out = tmp_path / "out"
    kling = build_plan(source, output=out)
    veo = build_plan(source, output=out, endpoint_spec=tmp_path / "veo.yaml")
    # rows 1-3 on Kling, then the same three as rows 4-6 on Veo
    jobs = kling.jobs + [dataclasses.replace(j, row=j.row + 3) for j in veo.jobs]
    with Ledger.in_folder(out) as ledger:
        ledger.sync(kling.jobs, KLING)
        ledger.sync(jobs, veo.endpoint.id)
    page = write_pages(out, now=T0).compare
    assert page is not None
    data = blob(page.read_text(encoding="utf-8"))
    assert [c["label"] for c in data["columns"]] == [
        "kling v2.5-turbo pro aspect_ratio=16:9",
        "kling v2.5-turbo pro aspect_ratio=9:16",
        "veo3.1 fast aspect_ratio=16:9",
        "veo3.1 fast aspect_ratio=9:16",
    ]
    lines = data["lines"]
    assert [(line["prompt"], line["rows"], line["row"]) for line in lines] == [
        ("sea", [1, 3, 4, 6], 1),
        ("fox", [2, 5], 2),
    ]
    assert [c is None for c in lines[1]["cells"]] == [False, True, False, True]


def test_prompts_and_names_cannot_inject_markup(tmp_path: Path) -> None:
    """A prompt or folder name holding markup and quotes appears only escaped, and the data
    round-trips it exactly."""
    folder = two_models(tmp_path, [EVIL, "calm"], name='x<b>"q')
    page = write_pages(folder.path, now=T0).compare
    assert page is not None
    text = page.read_text(encoding="utf-8")
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "<b>policy" not in text
    assert text.count("</script>") == 2  # the data and the code, nothing else
    assert "batchgen compare: x&lt;b&gt;&quot;q" in text
    data = blob(text)
    assert data["lines"][0]["prompt"] == EVIL
    assert data["folder"] == 'x<b>"q'
    assert data["lines"][1]["cells"][1]["error"] == "content <b>policy</b>"
    assert "innerHTML" not in text


def test_short_names() -> None:
    """Short names drop the owner and the kind of endpoint; clashing ones keep the whole id."""
    assert short_name(KLING) == "kling v2.5-turbo pro"
    assert short_name("fal-ai/veo3.1/fast") == "veo3.1 fast"
    assert short_name("fal-ai/sora-2/text-to-video") == "sora-2"
    assert short_name("me/my-model") == "my-model"
    assert short_name("solo") == "solo"
    i2v = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    assert short_names([KLING, i2v]) == {KLING: KLING, i2v: i2v}


def test_batch_identity_tells_folders_of_one_input_apart(tmp_path: Path) -> None:
    """Two folders of the same input get different identities once submitted (their first
    request ids differ), and a folder keeps its identity as more jobs are sent."""
    identities = []
    for name, request in [("a", "req-first-a"), ("b", "req-first-b")]:
        folder = make_compare_folder(tmp_path, PROMPTS[:2], [KLING, VEO_FAST], name=name)
        jobs = folder.ledger.jobs()
        before = batch_identity(folder.ledger.first_request(), jobs)
        key = folder.keys[0]
        folder.ledger.transition(key, JobStatus.SUBMITTING, attempts=1)
        folder.ledger.transition(key, JobStatus.QUEUED, request_id=request, submitted_at=T0)
        identity = batch_identity(folder.ledger.first_request(), jobs)
        folder.queued(folder.keys[1])
        assert batch_identity(folder.ledger.first_request(), jobs) == identity
        identities.append((before, identity))
    assert identities[0][0] == identities[1][0]  # nothing sent: only the keys to go by
    assert identities[0][1] != identities[1][1]


def test_cli_report_prints_both_pages(tmp_path: Path, monkeypatch: Any) -> None:
    """`batchgen report DIR` prints the report's path, then the comparison's."""
    folder = two_models(tmp_path)
    folder.ledger.close()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", "out"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{folder.path / 'report.html'}\n{folder.path / 'compare.html'}\n"


# -- in a real browser -------------------------------------------------------------------------

STATE = """(() => ({
  stored: Object.fromEntries(Object.entries(localStorage)),
  won: [...document.querySelectorAll('.line')].filter((l) => l.dataset.line)
    .map((l) => [...l.querySelectorAll('.cell')].findIndex((c) => c.classList.contains('won'))),
  verdicts: [...document.querySelectorAll('.line .verdict')].map((v) => v.textContent),
  current: document.querySelector('.line.current').dataset.row,
  picked: document.getElementById('picked').textContent,
  score: [...document.querySelectorAll('#score .chip')].map((c) => c.textContent),
}))()"""


def browser(tmp_path: Path) -> Browser:
    assert CHROMIUM is not None
    return Browser(CHROMIUM, tmp_path / "profile")


@needs_chromium
def test_keys_pick_winners_kept_per_batch_and_exported(tmp_path: Path) -> None:
    """From file://, j/k/arrows move between rows, 1-9 pick, t and n mark tie and none, x
    clears; picks survive a reload, stay apart from another folder's, and the exported CSV
    names row, prompt, choice, endpoint, job key and video file."""
    folder = two_models(tmp_path / "a", [f'-{PROMPTS[0]}, "quoted"', *PROMPTS[1:]])
    other = two_models(tmp_path / "b")
    page = write_pages(folder.path, now=T0).compare
    other_page = write_pages(other.path, now=T0).compare
    assert page is not None
    assert other_page is not None
    identity = batch_identity(folder.ledger.first_request(), folder.ledger.jobs())
    lines = blob(page.read_text(encoding="utf-8"))["lines"]
    ids = [line["id"] for line in lines]
    with browser(tmp_path) as b:
        b.open(page.as_uri())
        keys = ["2", "j", "1", "ArrowDown", "1", "t", "j", "n", "k", "ArrowUp", "j", "j", "x", "j"]
        for key in keys:
            b.press(key)
        state = b.evaluate(STATE)
        assert state["stored"] == {
            f"batchgen-compare/{identity}": json.dumps(
                {ids[0]: "veo3.1 fast", ids[1]: "kling v2.5-turbo pro", ids[2]: "tie"},
                separators=(",", ":"),
            )
        }
        assert state["won"] == [1, 0, -1, -1]
        assert state["verdicts"] == ["", "", "tie", ""]
        assert state["current"] == "4"  # j past the last row stays there
        assert state["picked"] == "3 of 4 rows picked"
        assert state["score"] == [
            "1kling v2.5-turbo pro1",
            "2veo3.1 fast1",
            "tie1",
            "none is good0",
        ]
        kept = [1, 0, -1, -1]
        assert b.reopen_until(page.as_uri(), STATE, lambda s: s["won"] == kept)["won"] == kept
        saved = b.download("document.getElementById('export').click()", tmp_path)
        b.open(other_page.as_uri())
        assert b.evaluate(STATE)["picked"] == "0 of 4 rows picked"
    assert saved.name == "picks-out.csv"
    raw = saved.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, as manifest.csv, for Excel
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["row", "prompt", "choice", "endpoint", "key", "video_path"],
        [
            "1",
            f'\'-{PROMPTS[0]}, "quoted"',  # a formula-like cell defused, as manifest.csv does
            "veo3.1 fast",
            "fal-ai/veo3.1/fast",
            lines[0]["cells"][1]["key"],
            lines[0]["cells"][1]["file"],
        ],
        [
            "2",
            PROMPTS[1],
            "kling v2.5-turbo pro",
            KLING,
            lines[1]["cells"][0]["key"],
            lines[1]["cells"][0]["file"],
        ],
        ["3", PROMPTS[2], "tie", "", "", ""],
    ]
    assert (folder.path / rows[1][5]).is_file()


# What each video of the first line is doing.
VIDEOS = """(() => [...document.querySelector('.line[data-row="1"]').querySelectorAll('video')]
  .map((v) => ({ paused: v.paused, time: v.currentTime })))()"""


def until(condition: str) -> str:
    """Script that waits, on the page's own frames, until ``condition`` holds (at most 5 s)."""
    return f"""new Promise((resolve, reject) => {{
      const start = performance.now();
      const look = () => {{
        if ({condition}) resolve(true);
        else if (performance.now() - start > 5000) reject(new Error({json.dumps(condition)}));
        else requestAnimationFrame(look);
      }};
      look();
    }})"""


@needs_chromium
def test_a_rows_videos_play_pause_and_seek_together(tmp_path: Path) -> None:
    """Play on one video of a row starts the others, pause stops them, a seek moves them;
    space plays and pauses the current row; other rows stay still."""
    folder = make_compare_folder(tmp_path, PROMPTS[:2], [KLING, VEO_FAST, SORA])
    for key in folder.keys:
        folder.done(key, content=playable_mp4(key))
    page = write_pages(folder.path, now=T0).compare
    assert page is not None
    row = "[...document.querySelector('.line[data-row=\"1\"]').querySelectorAll('video')]"
    ready = f"{row}.every((v) => v.readyState >= 1)"
    with browser(tmp_path) as b:
        b.open(page.as_uri())
        b.evaluate(until(ready))
        b.evaluate(f"{row}[1].play()")
        b.evaluate(until(f"{row}.every((v) => !v.paused)"))
        b.evaluate(f"{row}[2].pause()")
        b.evaluate(until(f"{row}.every((v) => v.paused)"))
        assert [v["paused"] for v in b.evaluate(VIDEOS)] == [True, True, True]
        b.evaluate(f"{row}[0].currentTime = 0.5")
        b.evaluate(until(f"{row}.every((v) => Math.abs(v.currentTime - 0.5) < 0.01)"))
        b.press(" ")
        b.evaluate(until(f"{row}.every((v) => !v.paused)"))
        others = "[...document.querySelector('.line[data-row=\"2\"]').querySelectorAll('video')]"
        assert b.evaluate(f"{others}.every((v) => v.paused)")
        b.press(" ")
        b.evaluate(until(f"{row}.every((v) => v.paused)"))


def test_a_rows_picks_are_kept_by_row_and_prompt(tmp_path: Path) -> None:
    """A line's id (what its pick is stored under) names its row and its prompt: a row whose
    prompt was edited gets a new id, so it never inherits the old prompt's pick."""
    ids = []
    for prompts in [PROMPTS, ["a stormy sea", *PROMPTS[1:]]]:
        folder = make_compare_folder(tmp_path / str(len(ids)), prompts, [KLING, VEO_FAST])
        page = write_pages(folder.path, now=T0).compare
        assert page is not None
        ids.append([line["id"] for line in blob(page.read_text(encoding="utf-8"))["lines"]])
    assert [i.split("-")[0] for i in ids[0]] == ["1", "2", "3", "4"]
    assert ids[0][0] != ids[1][0]
    assert ids[0][1:] == ids[1][1:]
