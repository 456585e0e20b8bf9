"""report.html: one self-contained page, escaped user data, summary, histogram, big batches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import runs
from click.testing import CliRunner
from folders import T0, Folder, make_folder
from headless import Browser

import batchgen
from batchgen.cli import cli
from batchgen.folder.report import histogram, latency_svg, percentile, write_report
from batchgen.mock import MockServer

REPO = Path(batchgen.__file__).resolve().parent.parent
EVIL = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'


def gallery(page: str) -> dict:
    """The JSON blob the page's script renders from."""
    match = re.search(r'<script type="application/json" id="jobs">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict = json.loads(match.group(1))
    return data


def sample(tmp_path: Path) -> Folder:
    rows = ["prompt,duration,shot", f'"{EVIL.replace(chr(34), 2 * chr(34))}",5,wide']
    rows += [f"calm sea {i},{5 if i % 2 else 10},{'wide' if i % 3 else 'close'}" for i in range(6)]
    folder = make_folder(tmp_path, "\n".join(rows) + "\n")
    k = folder.keys
    folder.done(k[0], latency=100)
    folder.done(k[1], latency=160)
    folder.done(k[2], latency=130)
    folder.failed(k[3], "content <b>policy</b>", error_type="content_policy_violation")
    folder.running(k[4])
    return folder


def test_writes_one_self_contained_page(tmp_path: Path) -> None:
    """report.html loads nothing from the network: inline CSS and JS, no links to assets."""
    folder = sample(tmp_path)
    page = write_report(folder.path, now=T0 + 600).read_text(encoding="utf-8")
    assert "<style>" in page
    assert "<script>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert not [p for p in folder.path.iterdir() if p.name.endswith(".tmp")]


def test_user_data_cannot_inject_markup(tmp_path: Path) -> None:
    """Prompts and errors holding markup appear only escaped, and round-trip exactly."""
    folder = sample(tmp_path)
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>policy" not in page
    assert "content &lt;b&gt;policy&lt;/b&gt;" in page  # the failures table, escaped
    assert page.count("</script>") == 2  # the data blob and the code, nothing else
    jobs = gallery(page)["jobs"]
    assert jobs[0]["prompt"] == EVIL
    assert jobs[3]["error"] == "content <b>policy</b>"
    assert "innerHTML" not in page


def test_gallery_data_videos_params_and_filters(tmp_path: Path) -> None:
    """Done jobs carry their relative video path; parameters with few values become filters."""
    folder = sample(tmp_path)
    data = gallery(write_report(folder.path, now=T0).read_text(encoding="utf-8"))
    jobs = data["jobs"]
    first = folder.ledger.get(folder.keys[0])
    assert jobs[0]["video"] == first.filename
    assert (folder.path / jobs[0]["video"]).is_file()
    assert jobs[3]["video"] is None
    assert jobs[3]["status"] == "failed"
    assert ["duration", "5"] in jobs[0]["params"]
    assert jobs[0]["latency"] == "1m40s"
    names = [f["name"] for f in data["filters"]]
    assert "duration" in names
    assert "shot" in names
    assert "prompt" not in names
    assert "cfg_scale" not in names  # one value only: nothing to filter
    assert data["statuses"] == ["done", "failed", "running", "pending"]


def test_summary_has_counts_spend_and_histogram(tmp_path: Path) -> None:
    """The summary shows counts, spend, median latency, a histogram and grouped failures."""
    folder = sample(tmp_path)
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert "<b>$1.40</b><span>spent</span>" in page
    assert "<b>2m10s</b><span>median latency</span>" in page
    assert '<svg class="hist"' in page
    assert "1×</td><td>content &lt;b&gt;" in page


def test_empty_batch_reports_without_histogram(tmp_path: Path) -> None:
    """A batch with nothing done yet still gets a page, saying no job is done."""
    folder = make_folder(tmp_path, "prompt\na\n")
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert "No job is done yet." in page
    assert len(gallery(page)["jobs"]) == 1


def test_histogram_bins_are_round_and_count_everything() -> None:
    """Bins have a round width, start at or below the minimum and count every value."""
    values = [61.0, 75.5, 90.0, 90.0, 119.9, 300.0]
    start, width, counts = histogram(values)
    assert width in (10.0, 15.0, 20.0, 25.0, 50.0)
    assert start <= 61.0 < start + width
    assert sum(counts) == len(values)
    assert start + len(counts) * width > 300.0
    assert histogram([42.0, 42.0]) == (42.0, 1.0, [2])


def test_latency_svg_one_bar_per_bin_with_tooltips() -> None:
    """The SVG has a bar per bin, each with a tooltip naming its range and count."""
    svg = latency_svg([60.0, 62.0, 125.0])
    _, _, counts = histogram([60.0, 62.0, 125.0])
    assert svg.count("<rect") == len(counts)
    assert "<title>1m00s to " in svg
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")


def test_percentile_nearest_rank() -> None:
    """Median and p90 by nearest rank."""
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile([7.0], 90) == 7.0


def big_batch(tmp_path: Path, n: int = 2000) -> Folder:
    rows = "".join(f"prompt {i} of a long batch,{5 if i % 2 else 10}\n" for i in range(n))
    folder = make_folder(tmp_path, "prompt,duration\n" + rows)
    for i, key in enumerate(folder.keys[:40]):
        folder.done(key, latency=90 + i)
    return folder


def test_two_thousand_jobs_stay_small_and_paged(tmp_path: Path) -> None:
    """2,000 jobs give one page of modest size; cards are drawn a page at a time by script."""
    folder = big_batch(tmp_path)
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert len(gallery(page)["jobs"]) == 2000
    assert len(page) < 2_000_000
    assert "<video" not in page  # no element per job in the markup itself
    assert "const PAGE = 48;" in page


def test_cli_report_prints_the_absolute_path(tmp_path: Path, monkeypatch: Any) -> None:
    """`batchgen report DIR` writes DIR/report.html and prints its absolute path, also for a
    relative DIR."""
    folder = make_folder(tmp_path, "prompt\na\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", "out"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{folder.path / 'report.html'}\n"
    assert Path(result.output.strip()).is_absolute()


def test_cli_report_open_hands_the_page_to_the_browser(tmp_path: Path) -> None:
    """`report --open` opens the page in the default browser ($BROWSER here: a script that
    records what it was given) and still prints the path."""
    folder = make_folder(tmp_path, "prompt\na\n")
    folder.ledger.close()
    seen = tmp_path / "seen.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{seen}"\n', encoding="utf-8")
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "batchgen", "report", str(folder.path), "--open"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page = folder.path / "report.html"
    assert done.stdout == f"{page}\n"
    assert seen.read_text(encoding="utf-8") == f"{page.as_uri()}\n"


def test_same_parameters_are_shown_once_in_the_header(tmp_path: Path) -> None:
    """Parameters every job shares are named once in the header and left off the cards;
    those that differ stay on each card."""
    folder = sample(tmp_path)
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    header = page[page.index('<div class="sub" id="common">') :].split("</div>", 1)[0]
    assert "Same for every job: aspect_ratio: 16:9" in header
    assert "cfg_scale: 0.5" in header
    assert "duration" not in header
    params = gallery(page)["jobs"][0]["params"]
    assert ["duration", "5"] in params
    assert not [p for p in params if p[0] in ("aspect_ratio", "cfg_scale")]


def test_header_shows_when_the_run_started_ended_and_took(tmp_path: Path) -> None:
    """run.json's start and end are in the header with the time taken; an unfinished run
    says so; no run.json, no line."""
    folder = sample(tmp_path)
    assert '<div class="sub" id="run"></div>' in write_report(folder.path, now=T0).read_text()
    run = {"started_at": "2025-01-31T12:00:00Z", "finished_at": None, "outcome": None}
    (folder.path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert "run started 2025-01-31 12:00:00 UTC · not finished" in page
    run.update(finished_at="2025-01-31T12:14:02Z", outcome="failed")
    (folder.path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert (
        "run started 2025-01-31 12:00:00 UTC · ended 12:14:02 UTC · took 14m02s · outcome: failed"
        in page
    )
    run.update(finished_at="2025-02-01T01:00:00Z")
    (folder.path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    assert "ended 2025-02-01 01:00:00 UTC · took 13h00m" in write_report(folder.path).read_text()


def test_header_tells_the_story_of_a_batch_run_several_times(tmp_path: Path) -> None:
    """A folder run three times: the header says how many runs since when and how long
    they ran in all, then the last run on its own."""
    folder = sample(tmp_path)
    runs = [
        {"started_at": "2025-01-31T10:00:00Z", "finished_at": "2025-01-31T10:20:00Z"},
        {"started_at": "2025-01-31T11:00:00Z", "finished_at": None, "outcome": None},
        {"started_at": "2025-01-31T12:00:00Z", "finished_at": "2025-01-31T12:00:04Z"},
    ]
    run = {**runs[-1], "outcome": "done", "runs": runs}
    (folder.path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert (
        "3 runs since 2025-01-31 10:00:00 UTC, 20m04s running in all · last run started "
        "2025-01-31 12:00:00 UTC · ended 12:00:04 UTC · took 4s · outcome: done"
    ) in page


def test_possible_duplicates_and_orphans_are_flagged(tmp_path: Path) -> None:
    """Jobs flagged possibly_duplicate, and jobs whose row left the input, carry a flag for a
    badge and a filter, and are counted in the summary."""
    folder = sample(tmp_path)
    k = folder.keys
    folder.ledger.update(k[1], possibly_duplicate=True)
    folder.ledger.sync(folder.plan.jobs[:-1], folder.plan.endpoint.id)  # the last row left
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    data = gallery(page)
    assert [j["dup"] for j in data["jobs"]].count(True) == 1
    assert data["jobs"][1]["dup"] is True
    orphans = [j["key"] for j in data["jobs"] if j["orphan"]]
    assert orphans == [k[-1]]
    assert data["flags"] == {"dup": 1, "orphan": 1}
    assert "<b>1</b><span>possibly duplicate</span>" in page
    assert "<b>1</b><span>no longer in the input</span>" in page
    assert "b-flag" in page


def test_failure_groups_are_filters(tmp_path: Path) -> None:
    """Each row of the failures table names its group, and each failed job its group."""
    folder = sample(tmp_path)
    folder.failed(folder.keys[5], "Runner disconnected", error_type="runner_disconnected")
    folder.failed(folder.keys[6], "Runner disconnected", error_type="runner_disconnected")
    page = write_report(folder.path, now=T0).read_text(encoding="utf-8")
    assert '<tr data-fail="0" tabindex="0"' in page
    assert '<tr data-fail="1" tabindex="0"' in page
    fails = {j["row"]: j["fail"] for j in gallery(page)["jobs"] if j["status"] == "failed"}
    assert fails == {4: 1, 6: 0, 7: 0}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=90, check=True
    )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary")
def test_headless_chromium_renders_the_first_page_of_cards(tmp_path: Path) -> None:
    """In a real browser, 2,000 jobs render 48 cards, videos for done ones, and the filters."""
    folder = big_batch(tmp_path)
    page = write_report(folder.path, now=T0)
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert dom.count('<article class="card">') == 48
    assert dom.count("<video") == 40
    assert '<span id="shown">2,000 jobs</span>' in dom  # no filter: no "showing 48 of"
    assert 'aria-label="duration"' in dom
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert shot.stat().st_size > 10_000


def sixty(tmp_path: Path) -> Path:
    """A report of 60 jobs: 40 done, 15 failed in two groups (10 and 5), 5 pending."""
    rows = "".join(f"shot {i},{5 if i % 2 else 10}\n" for i in range(60))
    folder = make_folder(tmp_path, "prompt,duration\n" + rows)
    for i, key in enumerate(folder.keys):
        if i < 40:
            folder.done(key, latency=90 + i)
        elif i < 50:
            folder.failed(key, "Runner disconnected", error_type="runner_disconnected")
        elif i < 55:
            folder.failed(key, "content policy", error_type="content_policy_violation")
    return write_report(folder.path, now=T0)


# What the page shows: the pressed chips, the status of each card, and the count line.
VIEW = """(() => ({
  pressed: [...document.querySelectorAll('#filters .chip[aria-pressed=true]')]
    .map((c) => c.textContent),
  cards: [...document.querySelectorAll('#grid .card .head .badge:first-child')]
    .map((b) => b.textContent),
  shown: document.getElementById('shown').textContent,
  hash: location.hash,
}))()"""


def click(selector: str, text: str = "") -> str:
    """Script that clicks the first element matching ``selector`` whose text starts so."""
    return (
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        f".find((e) => e.textContent.startsWith({json.dumps(text)})).click()"
    )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary")
def test_clicking_a_status_chip_shows_that_status(tmp_path: Path) -> None:
    """In a real browser, clicking `failed 15` shows the 15 failures and only them; clicking
    it again shows every job; a failure group shows its jobs; the URL names the filter."""
    page = sixty(tmp_path)
    assert CHROMIUM is not None
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        assert browser.evaluate(VIEW)["shown"] == "60 jobs"
        browser.evaluate(click("#filters .chip", "failed "))
        view = browser.evaluate(VIEW)
        assert view["pressed"] == ["failed 15"]
        assert view["cards"] == ["failed"] * 15
        assert view["shown"] == "showing 15 of 60 jobs"
        assert view["hash"] == "#status=failed"
        browser.evaluate(click("#filters .chip", "failed "))
        view = browser.evaluate(VIEW)
        assert (view["pressed"], view["shown"], len(view["cards"])) == ([], "60 jobs", 48)
        browser.evaluate(click("tr[data-fail]", "5×"))
        view = browser.evaluate(VIEW)
        assert view["cards"] == ["failed"] * 5
        assert view["shown"] == "showing 5 of 60 jobs"
        browser.evaluate(click("#filters .chip", "pending "))
        view = browser.evaluate(VIEW)
        assert (view["pressed"], view["cards"]) == (["pending 5"], ["pending"] * 5)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary")
def test_a_filter_in_the_url_is_applied_on_load(tmp_path: Path) -> None:
    """report.html#status=failed opens showing the failures only."""
    page = sixty(tmp_path)
    dom = chromium(tmp_path, "--dump-dom", page.as_uri() + "#status=failed").stdout
    assert dom.count('<article class="card">') == 15
    assert dom.count('<span class="badge b-failed">failed</span>') == 15
    assert "showing 15 of 60 jobs" in dom
    assert '<button class="chip" type="button" aria-pressed="true">failed 15</button>' in dom


async def test_report_of_a_real_run_points_at_its_videos(tmp_path: Path) -> None:
    """After a run on the emulator, every card's video path resolves inside the folder."""
    out = tmp_path / "out"
    async with MockServer(runs.mock_config()) as server:
        await runs.run(runs.plan_for(runs.prompts(tmp_path, 4), out), server)
    jobs = gallery(write_report(out).read_text(encoding="utf-8"))["jobs"]
    assert [j["status"] for j in jobs] == ["done"] * 4
    for job in jobs:
        assert job["video"].startswith("videos/")
        assert (out / unquote(job["video"])).is_file()


def test_sub_second_bins_get_distinct_axis_labels() -> None:
    """Latencies spread over less than a second still get distinct, readable axis labels."""
    svg = latency_svg([2.01, 2.12, 2.3, 2.45, 2.7, 2.74])
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', svg)
    assert len(labels) == len(set(labels)) > 2
    assert all(label.endswith("s") and "." in label for label in labels)


async def test_an_image_to_video_report_shows_each_jobs_input_image(tmp_path: Path) -> None:
    """The cards of an image-to-video run name the input by its file (not the URL it was
    uploaded to), filter by it, and carry the input image linked relative to the report."""
    import runs

    out, (_, dog) = await runs.image_run(tmp_path, [("a cat", 0), ("a dog", 1)])
    data = gallery(write_report(out).read_text(encoding="utf-8"))
    by_prompt = {job["prompt"]: job for job in data["jobs"]}
    assert by_prompt["a cat"]["values"]["image_url"] == "img0.png"
    assert ["image_url", ["img0.png", "img1.png"]] in [
        [f["name"], f["values"]] for f in data["filters"]
    ]
    (href,) = by_prompt["a dog"]["inputs"]
    assert (out / href).resolve() == dog.resolve()


async def test_a_card_never_shows_an_input_edited_since_the_run(tmp_path: Path) -> None:
    """An input image changed after the run is named "(changed since)" and not shown."""
    import runs

    out, (_, dog) = await runs.image_run(tmp_path, [("a cat", 0), ("a dog", 1)])
    dog.write_bytes(dog.read_bytes() + b"edited")
    data = gallery(write_report(out).read_text(encoding="utf-8"))
    by_prompt = {job["prompt"]: job for job in data["jobs"]}
    assert by_prompt["a dog"]["values"]["image_url"] == "img1.png (changed since)"
    assert by_prompt["a dog"]["inputs"] == []
    assert len(by_prompt["a cat"]["inputs"]) == 1
