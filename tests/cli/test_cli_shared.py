"""The commands on a shared PostgreSQL ledger: run as a worker of a named batch; status,
cancel, report and export with --ledger URL --batch NAME from anywhere; a ledger that cannot
be reached said plainly (exit 2), its password nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pgserver
import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.ledger.opener import open_shared
from batchgen.ledger.shared import masked
from batchgen.plan.build import build_plan


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def prompts(folder: Path, count: int = 4) -> Path:
    path = folder / "p.csv"
    path.write_text("prompt\n" + "".join(f"shot {i}\n" for i in range(count)), encoding="utf-8")
    return path


def every_file_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_a_shared_batch_is_read_from_anywhere(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """A worker runs the batch; status (--json keeps counts), report and export name only
    --ledger and --batch; run.json masks the URL; the password is in no file written."""
    url, out = postgres.url, tmp_path / "worker"
    code, output = invoke(
        "run", str(prompts(tmp_path)), "--out", str(out), "--mock", "--ledger", url,
        "--batch", batch, "--progress", "lines",
    )  # fmt: skip
    assert code == 0, output
    assert not (out / "batchgen.db").exists()
    assert json.loads((out / "run.json").read_text())["ledger"] == masked(url)
    code, output = invoke("status", "--ledger", url, "--batch", batch, "--json")
    assert code == 0, output
    status = json.loads(output)
    assert status["counts"]["done"] == 4
    assert status["folder"] == f"batch {batch!r} at {masked(url)}"
    code, output = invoke("status", "--ledger", url, "--batch", batch)
    assert "done 4" in output
    assert pgserver.PASSWORD not in output
    pages = tmp_path / "third-machine"
    code, output = invoke("report", str(pages), "--ledger", url, "--batch", batch)
    assert code == 0, output
    assert "../worker/videos/" in (pages / "report.html").read_text()
    dataset = tmp_path / "dataset"
    code, output = invoke(
        "export", "--ledger", url, "--batch", batch, "--format", "hf", "--to", str(dataset)
    )
    assert code == 0, output
    assert len(list(dataset.glob("*.mp4"))) == 4
    for folder in (out, pages, dataset):
        assert pgserver.PASSWORD not in every_file_text(folder)


def test_cancel_a_shared_batch_and_find_it_by_folder_name(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """cancel --ledger --batch marks the batch's pending jobs cancelled; with the URL in
    BATCHGEN_LEDGER, a DIR that holds no ledger of its own names the batch by its name."""
    plan = build_plan(prompts(tmp_path, 3))
    with open_shared(postgres.url, batch) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
    code, output = invoke("cancel", "--ledger", postgres.url, "--batch", batch)
    assert code == 0, output
    assert "3 cancelled before submit" in output
    env = {"BATCHGEN_LEDGER": postgres.url}
    code, output = invoke("status", str(tmp_path / batch), "--json", env=env)
    assert code == 0, output
    assert json.loads(output)["counts"]["cancelled"] == 3


@pytest.mark.parametrize("problem", ["scheme", "password", "port", "no batch"])
def test_a_ledger_out_of_reach_exits_2_without_its_password(
    tmp_path: Path, postgres: pgserver.Server, problem: str
) -> None:
    """A URL that is not PostgreSQL's, a wrong password, a server not listening, a batch not
    there: one line saying so, exit 2, no traceback, the password given nowhere in it."""
    secret = "Wr0ng-Secret"
    url = {
        "scheme": f"mysql://u:{secret}@127.0.0.1/db",
        "password": postgres.url_for(secret),
        "port": postgres.url_for(port=pgserver.free_port()),
        "no batch": postgres.url,
    }[problem]
    for args in (
        ("status", "--ledger", url, "--batch", "nothing-here"),
        ("report", "--ledger", url, "--batch", "nothing-here", str(tmp_path / "r")),
    ):
        code, output = invoke(*args)
        assert code == 2, output
        assert output.startswith("error: ")
        assert secret not in output
        assert pgserver.PASSWORD not in output
    if problem != "no batch":
        args = [
            "run",
            str(prompts(tmp_path)),
            "--mock",
            "--ledger",
            url,
            "--out",
            str(tmp_path / "o"),
        ]
        code, output = invoke(*args)
        assert code == 2, output
        assert secret not in output


def test_batch_without_a_ledger_is_refused(tmp_path: Path) -> None:
    """--batch without --ledger (or BATCHGEN_LEDGER) is a usage error, nothing sent."""
    code, output = invoke("run", str(prompts(tmp_path)), "--mock", "--batch", "b")
    assert code == 2
    assert "give --ledger URL too" in output
    code, output = invoke("status", "--batch", "b", env={"BATCHGEN_LEDGER": ""})
    assert code == 2
    assert "give --ledger URL too" in output
