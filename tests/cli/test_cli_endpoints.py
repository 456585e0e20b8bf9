"""`batchgen endpoints`: the catalog list, one spec, importing fal's OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from batchgen.cli import cli

FIXTURES = Path(__file__).parents[1] / "plan" / "fixtures"
KLING_I2V = FIXTURES / "kling-v2.5-turbo-pro-image-to-video.openapi.json"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["endpoints", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_is_one_line_per_endpoint() -> None:
    """The list has id, kind and price summary on one line for each built-in."""
    code, out, _ = invoke()
    assert code == 0
    lines = out.splitlines()
    assert len(lines) >= 20
    kling = next(line for line in lines if "v2.5-turbo/pro/text-to-video" in line)
    assert " ".join(kling.split()) == (
        "fal-ai/kling-video/v2.5-turbo/pro/text-to-video t2v $0.35 per 5 s, +$0.07/s"
    )
    assert any(line.split()[1] == "i2v" for line in lines)


def test_list_as_json() -> None:
    """--json lists objects with id, kind, price (the summary), title and status."""
    code, out, _ = invoke("--json")
    rows = json.loads(out)
    assert code == 0
    veo = next(row for row in rows if row["id"] == "fal-ai/veo3.1/image-to-video")
    assert veo == {
        "id": "fal-ai/veo3.1/image-to-video",
        "kind": "i2v",
        "price": "$0.20–0.60/s by resolution, generate_audio",
        "title": "Veo 3.1 (image to video)",
        "status": "active",
    }


def test_show_one_endpoint() -> None:
    """ID shows parameters with types, limits, defaults, file kinds, the price and its source."""
    code, out, _ = invoke("fal-ai/wan-25-preview/image-to-video")
    assert code == 0
    assert "kind: i2v" in out
    assert "price: $0.05–0.15/s by resolution" in out
    assert "  prompt: string; required; at most 800 characters" in out
    assert "  image_url: file; required; image, at most 50 MB" in out
    assert "  audio_url: file; audio, at most 15 MB" in out
    assert "  duration: string; one of 5, 10; default '5'" in out
    assert "source: built-in:wan-25-preview-image-to-video.yaml" in out
    assert "fal-video-endpoints.md" in out


def test_show_as_json_is_the_whole_spec() -> None:
    """ID --json prints the spec as data: parameters, price rule and summary, source."""
    code, out, _ = invoke("fal-ai/kling-video/v2.6/pro/image-to-video", "--json")
    spec = json.loads(out)
    assert code == 0
    assert spec["kind"] == "i2v"
    assert spec["parameters"]["start_image_url"]["aliases"] == ["image_url"]
    assert spec["parameters"]["start_image_url"]["accept"] == ["image"]
    assert spec["price"]["per_second"]["parameter"] == "duration"
    assert spec["price_summary"] == "$0.07–0.14/s by generate_audio"


def test_unknown_id_suggests_close_matches_and_exits_2() -> None:
    """An unknown id is a usage error that names the endpoints it may have meant."""
    code, _, err = invoke("fal-ai/veo3.1/fastt")
    assert code == 2
    assert "no built-in endpoint 'fal-ai/veo3.1/fastt'" in err
    assert "did you mean fal-ai/veo3.1/fast" in err


def test_import_writes_a_spec_that_plan_reads(tmp_path: Path) -> None:
    """import -o writes YAML; plan then runs with it, and with the JSON document directly."""
    out = tmp_path / "kling-i2v.yaml"
    code, _, err = invoke("import", str(KLING_I2V), "-o", str(out))
    assert code == 0, err
    assert "kling-i2v.yaml: fal-ai/kling-video/v2.5-turbo/pro/image-to-video, i2v" in err
    assert out.read_text().startswith("# fal-ai/kling-video/v2.5-turbo/pro/image-to-video")
    rows = tmp_path / "rows.csv"
    rows.write_text("prompt,image_url\na cat,https://example.com/cat.png\n")
    for spec_file in (out, KLING_I2V):
        result = CliRunner().invoke(
            cli, ["plan", "--json", str(rows), "--endpoint-spec", str(spec_file)]
        )
        assert result.exit_code == 0, result.output
        plan = json.loads(result.stdout)
        assert plan["endpoint"] == "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
        assert (plan["jobs"], plan["estimated_cost_usd"]) == (1, None)


def test_import_to_stdout_and_refusals(tmp_path: Path) -> None:
    """import without -o prints the spec; a file that is no OpenAPI document exits 2."""
    code, out, _ = invoke("import", str(KLING_I2V))
    assert code == 0
    assert "kind: i2v" in out
    bad = tmp_path / "spec.yaml"
    bad.write_text("id: me/model\n")
    code, _, err = invoke("import", str(bad))
    assert code == 2
    assert "spec.yaml: not an OpenAPI document" in err


def test_the_list_fits_a_narrow_terminal_and_lists_read_as_lists() -> None:
    """At 80 columns a line too long puts kind and price on a line of its own; a list
    parameter reads as a list of its items."""
    result = CliRunner().invoke(cli, ["endpoints"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert all(len(line) <= 80 or "[" in line for line in result.output.splitlines())
    assert "\n    i2v  $0.0243–0.124/s by resolution  [DEPRECATED" in result.output
    shown = CliRunner().invoke(cli, ["endpoints", "fal-ai/veo3.1/reference-to-video"])
    assert "  image_urls: list; required; min 1 items; each item: file; image" in shown.output
