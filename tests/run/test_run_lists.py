"""Lists of files and shots run on the emulator: a CSV with a JSON multi_prompt cell and
numbered columns, a YAML with lists of local images; each image uploaded once, the manifest
naming every file in its own columns and the URL sent in its place."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from media_files import png_files as images
from runs import KEY, SETTINGS, manifest, mock_config, run

from batchgen.mock import MockServer
from batchgen.plan.build import build_plan, file_sha256

KLING3 = "fal-ai/kling-video/v3/pro/image-to-video"
VEO_REF = "fal-ai/veo3.1/reference-to-video"


async def test_csv_and_yaml_lists_of_images_run_to_done_each_image_uploaded_once(
    tmp_path: Path,
) -> None:
    """Two inputs sharing three images (in JSON cells, numbered columns and YAML lists) run
    to done on the emulator, each in its folder; each image is uploaded once per folder."""
    paths = images(tmp_path)
    shots = tmp_path / "shots.csv"
    shots.write_text(
        "prompt,start_image_url,multi_prompt,elements.1.frontal_image_url,"
        "elements.1.reference_image_urls.1,elements.1.reference_image_urls.2\n"
        ',img0.png,"[{""prompt"": ""a cat walks"", ""duration"": ""4""}, '
        '{""prompt"": ""it sleeps""}]",img1.png,img2.png,\n'
        "a dog runs,img1.png,,img0.png,img2.png,img1.png\n"
    )
    refs = tmp_path / "refs.yaml"
    refs.write_text(
        "- prompt: three views\n  image_urls: [img0.png, img1.png, img2.png]\n"
        "- prompt: two\n  image_urls: [img2.png, img0.png]\n"
    )
    async with MockServer(mock_config()) as server:
        for source, endpoint in ((shots, KLING3), (refs, VEO_REF)):
            plan = build_plan(
                source, endpoint=endpoint, output=tmp_path / source.stem, run=SETTINGS
            )
            result = await run(plan, server)
            assert result.outcome == "done", result.message
        stats, base = server.stats(), server.base_url
    assert {sha: entry["count"] for sha, entry in stats["uploads"].items()} == {
        file_sha256(path): 2 for path in paths
    }
    records = {
        r.get("prompt") or r["multi_prompt"][0]["prompt"]: r
        for out in (tmp_path / "shots", tmp_path / "refs")
        for r in manifest(out)
    }
    assert {r["status"] for r in records.values()} == {"done"}
    dog = records["a dog runs"]
    refs_sent = dog["elements"][0]["reference_image_urls"]
    assert all(url.startswith(f"{base}/files/up/") for url in refs_sent)
    assert dog["elements.1.reference_image_urls.2.path"] == str(paths[1])
    assert dog["elements.1.reference_image_urls.2.sha256"] == file_sha256(paths[1])
    views = records["three views"]
    assert [views[f"image_urls.{n}.path"] for n in (1, 2, 3)] == [str(p) for p in paths]
    header = (tmp_path / "refs" / "manifest.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "image_urls,image_urls.1.path,image_urls.1.sha256,image_urls.2.path" in header


async def test_the_emulator_refuses_a_bad_item_with_its_place_as_fal_does(
    tmp_path: Path,
) -> None:
    """A submit whose second shot lacks its prompt is a 422 whose loc names the list index
    (from 0, as FastAPI's), and a list of files the model cannot fetch names the item."""
    async with MockServer(mock_config()) as server, aiohttp.ClientSession() as session:
        url = f"{server.base_url}/fal-ai/kling-video/v3/pro/text-to-video"
        body = {"multi_prompt": [{"prompt": "a"}, {"duration": "5"}]}
        headers = {"Authorization": f"Key {KEY}"}
        async with session.post(url, json=body, headers=headers) as answer:
            submitted = await answer.json()
        status_url = submitted["response_url"]
        detail = None
        for _ in range(200):
            async with session.get(status_url, headers=headers) as answer:
                if answer.status == 422:
                    detail = (await answer.json())["detail"]
                    break
        assert detail is not None
        assert {"loc": ["body", "multi_prompt", 1, "prompt"], "msg": "Field required"}.items() <= (
            detail[0].items()
        )
        json.dumps(detail)  # plain JSON, as fal's


async def test_a_model_outside_fal_ai_is_followed_at_its_own_owner_app(tmp_path: Path) -> None:
    """Seedance 2.0 (``bytedance/...``, no ``fal-ai/`` prefix) with its default duration
    "auto" runs to done: status and result are read at ``bytedance/seedance-2.0/requests/``,
    and the job is priced as 15 s."""
    source = tmp_path / "p.csv"
    source.write_text("prompt\na lighthouse at dusk\n")
    endpoint = "bytedance/seedance-2.0/text-to-video"
    plan = build_plan(source, endpoint=endpoint, output=tmp_path / "out", run=SETTINGS)
    assert plan.endpoint.owner_app == "bytedance/seedance-2.0"
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    (record,) = manifest(tmp_path / "out")
    assert record["price_usd"] == 4.5
    assert stats["submits_by_endpoint"] == {endpoint: 1}
