"""report.html: one self-contained page, escaped user data, summary, histogram, big batches."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import runs
from click.testing import CliRunner
from folders import T0, Folder, make_folder

from batchgen.cli import cli
from batchgen.folder.report import histogram, latency_svg, percentile, write_report
from batchgen.mock import MockServer

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


def test_cli_report_prints_the_path(tmp_path: Path) -> None:
    """`batchgen report DIR` writes DIR/report.html and prints where."""
    folder = make_folder(tmp_path, "prompt\na\n")
    result = CliRunner().invoke(cli, ["report", str(folder.path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(folder.path / "report.html")


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
    assert "showing 48 of 2,000 jobs" in dom
    assert 'aria-label="duration"' in dom
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert shot.stat().st_size > 10_000


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
