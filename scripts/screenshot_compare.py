"""Regenerate docs/compare.png: the compare view of a realistic folder, in headless Chromium.

Three models (Kling 2.5 turbo pro, Veo 3.1 fast, Sora 2) on four prompts, built on the ledger
by the tests' folder helpers, with real H.264 videos drawn here (256x144, two seconds: a scene
per prompt, a look per model); one job failed. Three rows get picked with the keys, as a
user would, so the scoreboard shows counts. Needs chromium on PATH. Run from anywhere:

    python scripts/screenshot_compare.py [--to docs/compare.png]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "folder")]

from folders import KLING, SORA, T0, VEO_FAST, make_compare_folder  # noqa: E402
from headless import Browser  # noqa: E402

from batchgen.folder.report import write_pages  # noqa: E402
from batchgen.mock import h264  # noqa: E402
from batchgen.mock.mp4 import encode  # noqa: E402

WIDTH_MBS, HEIGHT_MBS, FPS, FRAMES = 16, 9, 4, 8
Colour = tuple[float, float, float]
Scene = Callable[[float, float, float], Colour]  # (x, y, t) in 0..1 -> RGB in 0..1


def mix(a: Colour, b: Colour, k: float) -> Colour:
    k = min(1.0, max(0.0, k))
    return (a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k, a[2] + (b[2] - a[2]) * k)


def sunrise(x: float, y: float, t: float) -> Colour:
    sun_x, sun_y = 0.5, 0.42 - 0.06 * t
    if y < 0.55:
        sky = mix((0.12, 0.15, 0.38), (0.98, 0.55, 0.25), y / 0.55)
        glow = max(0.0, 1 - math.hypot(x - sun_x, (y - sun_y) * 1.8) / 0.12)
        return mix(sky, (1.0, 0.92, 0.55), glow * 1.6)
    sea = mix((0.10, 0.25, 0.45), (0.03, 0.08, 0.20), (y - 0.55) / 0.45)
    ripple = 0.5 + 0.5 * math.sin(y * 90 - t * 6)
    shine = max(0.0, 1 - abs(x - sun_x) / (0.04 + 0.25 * (y - 0.55))) * ripple
    return mix(sea, (1.0, 0.75, 0.40), shine * 0.8)


def fox(x: float, y: float, t: float) -> Colour:
    if y < 0.35:
        return mix((0.62, 0.72, 0.85), (0.85, 0.88, 0.92), y / 0.35)
    snow = mix((0.93, 0.95, 0.98), (0.78, 0.82, 0.90), (y - 0.35) / 0.65)
    cx, cy = 0.30 + 0.25 * t, 0.62
    body = ((x - cx) / 0.11) ** 2 + ((y - cy) / 0.08) ** 2
    head = ((x - cx - 0.11) / 0.045) ** 2 + ((y - cy + 0.07) / 0.05) ** 2
    tail = ((x - cx + 0.14) / 0.07) ** 2 + ((y - cy + 0.02) / 0.035) ** 2
    if body < 1 or head < 1:
        return (0.85, 0.36, 0.12) if y < cy + 0.04 else (0.95, 0.93, 0.90)
    if tail < 1:
        return (0.95, 0.95, 0.95) if x < cx - 0.19 else (0.80, 0.33, 0.10)
    shadow = max(0.0, 1 - ((x - cx) / 0.16) ** 2 - ((y - cy - 0.1) / 0.025) ** 2)
    return mix(snow, (0.60, 0.65, 0.78), shadow)


def neon(x: float, y: float, t: float) -> Colour:
    night = mix((0.05, 0.04, 0.15), (0.10, 0.05, 0.22), y)
    building = int(x * 7)
    top = 0.15 + 0.25 * ((building * 37) % 5) / 5
    if y > 0.78:  # the wet street: blurred reflections of the signs
        sign = (0.95, 0.2, 0.8) if building % 2 else (0.2, 0.9, 0.95)
        wave = 0.5 + 0.5 * math.sin(x * 40 + y * 30 + t * 8)
        return mix((0.06, 0.05, 0.12), sign, 0.35 * wave)
    if y < top:
        rain = (x * 53 + y * 11 - t * 2) % 0.2 < 0.004
        return (0.5, 0.5, 0.7) if rain else night
    wx, wy = (x * 7) % 1, (y * 14) % 1
    lit = ((building * 13 + int(y * 14) * 7) % 5) > 1
    if 0.2 < wx < 0.8 and 0.25 < wy < 0.75 and lit:
        return [(0.95, 0.85, 0.3), (0.95, 0.2, 0.8), (0.2, 0.9, 0.95)][(building + int(y * 14)) % 3]
    return mix((0.08, 0.07, 0.16), (0.14, 0.12, 0.25), wx)


def waterfall(x: float, y: float, t: float) -> Colour:
    fall = abs(x - 0.5 - 0.03 * math.sin(y * 6)) < 0.09 + 0.05 * y
    if fall and y < 0.8:
        streak = 0.5 + 0.5 * math.sin(x * 120 + (y - t) * 25)
        return mix((0.70, 0.85, 0.95), (0.97, 0.99, 1.0), streak)
    if y > 0.8:
        foam = 0.5 + 0.5 * math.sin(x * 60 + t * 7)
        return mix((0.25, 0.45, 0.50), (0.85, 0.92, 0.95), foam * (1 - abs(x - 0.5) * 2))
    leaves = 0.5 + 0.5 * math.sin(x * 35) * math.sin(y * 28)
    return mix((0.05, 0.25, 0.10), (0.35, 0.60, 0.20), leaves * (1 - y * 0.6))


def contrast(c: Colour) -> Colour:
    r, g, b = (min(1.0, max(0.0, (v - 0.5) * 1.3 + 0.52)) for v in c)
    return (r, g, b)


# How each model renders, so the columns look like different models.
LOOKS: dict[str, Callable[[Colour], Colour]] = {
    "kling": lambda c: c,
    "veo": contrast,
    "sora": lambda c: mix(c, (0.95, 0.75, 0.55), 0.18),
}


def ycbcr(c: Colour) -> tuple[int, int, int]:
    """BT.601 video range, never below 16: no zero bytes in the samples."""
    r, g, b = (255 * v for v in c)
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(min(235, max(16, y))), round(min(240, max(16, cb))), round(min(240, max(16, cr)))


def video(scene: Scene, look: Callable[[Colour], Colour]) -> bytes:
    """A real MP4 of ``scene`` seen through ``look``: FRAMES frames of I_PCM macroblocks."""
    width, height = WIDTH_MBS * 16, HEIGHT_MBS * 16
    frames = []
    for n in range(FRAMES):
        t = n / FRAMES
        pixels = [
            [ycbcr(look(scene(px / width, py / height, t))) for px in range(width)]
            for py in range(height)
        ]
        blocks = []
        for my in range(HEIGHT_MBS):
            for mx in range(WIDTH_MBS):
                rows = [pixels[my * 16 + j][mx * 16 : mx * 16 + 16] for j in range(16)]
                luma = bytes(p[0] for row in rows for p in row)
                cb = bytes(rows[2 * j][2 * i][1] for j in range(8) for i in range(8))
                cr = bytes(rows[2 * j][2 * i][2] for j in range(8) for i in range(8))
                blocks.append(luma + cb + cr)
        frames.append(h264.idr_picture(blocks, idr_pic_id=n % 2))
    return encode(frames, WIDTH_MBS, HEIGHT_MBS, FPS)


PROMPTS = [
    ("Sunrise over a calm sea, slow dolly in, golden light on the water", sunrise),
    ("A red fox trotting through fresh snow, low tracking shot", fox),
    ("Neon city street at night in the rain, reflections on wet asphalt", neon),
    ("A tall waterfall in a green forest, mist, handheld", waterfall),
]
MODELS = [(KLING, "kling", 108), (VEO_FAST, "veo", 71), (SORA, "sora", 139)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", type=Path, default=REPO / "docs" / "compare.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs chromium on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prompts = [p for p, _ in PROMPTS]
        folder = make_compare_folder(work, prompts, [m for m, _, _ in MODELS], name="storyboard")
        jobs = folder.ledger.jobs()
        for i, job in enumerate(jobs):
            row, model = divmod(i, len(MODELS))
            _, look, latency = MODELS[model]
            if (row, look) == (3, "sora"):
                folder.failed(job.key, "Content policy: the output was flagged by the provider")
                continue
            clip = video(PROMPTS[row][1], LOOKS[look])
            folder.done(job.key, latency=latency + 9 * row - 4 * model, content=clip)
        page = write_pages(folder.path, now=T0 + 3600).compare
        assert page is not None
        with Browser(chromium, work / "profile") as browser:
            browser.resize(1400, 900)
            browser.open(page.as_uri())
            for key in ["2", "j", "1", "j", "2", "j"]:
                browser.press(key)
            browser.evaluate(
                """new Promise((resolve) => {
                  const videos = [...document.querySelectorAll('video')];
                  // The first frame shown and loading over: no spinner on the controls.
                  const still = (v) => v.readyState >= 2 && !v.seeking && v.networkState !== 2;
                  const look = () => videos.every(still)
                    ? resolve(true) : requestAnimationFrame(look);
                  look();
                }).then(() => new Promise((resolve) => setTimeout(resolve, 1500)))"""
            )  # then the controls' loading spinner fades out (an animation: it takes time)
            browser.resize(1400, browser.evaluate("document.documentElement.scrollHeight"))
            browser.evaluate("window.scrollTo(0, 0)")
            browser.screenshot(args.to)
    print(args.to)


if __name__ == "__main__":
    main()
