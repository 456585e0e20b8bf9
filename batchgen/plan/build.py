"""From an input file or job spec to a validated, costed list of jobs. No network.

``build_plan`` reads the rows, applies defaults (spec, then ``--set``), expands the matrix and
``repeat``, coerces and validates every payload against the endpoint spec, and names every
output file. Every problem in every row is collected and raised at once as an ``InputError``.
A local file named by a ``type: file`` parameter is checked and replaced in the payload by
``sha256:<hex>`` of its bytes, the file itself kept in ``Job.files`` (see ``fileorigins``).

Each ``Job`` has a stable ``key``: a hash of the endpoint id, the canonical JSON of the exact
payload and the repeat index, so the same input gives the same keys on any machine, in any row
order. Identical jobs (two rows asking the very same thing) are one job.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.plan.cellplaces import at_record, written_place
from batchgen.plan.columns import elsewhere_notes, sort_columns
from batchgen.plan.defaults import MAX_JOBS, overlay
from batchgen.plan.endpoint import (
    DEFAULT_ENDPOINT,
    EndpointSpec,
    builtin_specs,
    id_problem,
    resolve,
)
from batchgen.plan.falspecs import FalSpecs
from batchgen.plan.fileorigins import PlanFiles, check_image_column, file_values
from batchgen.plan.files import not_a_file
from batchgen.plan.imagefolder import input_name, is_image_set
from batchgen.plan.inputfiles import InputFile
from batchgen.plan.inputs import Table, read_table
from batchgen.plan.jobspec import JobSpec, load_jobspec, looks_like_spec
from batchgen.plan.mix import (
    check_values,
    load_described,
    matrix_axis,
    mix_of,
    unnamed_problem,
)
from batchgen.plan.model import Job, Plan, job_key
from batchgen.plan.naming import (
    DEFAULT_TEMPLATE,
    FOLDER_TEMPLATE,
    Namer,
    check_template,
    file_stem,
    model_slug,
    slug,
)
from batchgen.plan.outdir import output_problem
from batchgen.plan.pricenotes import say_auto_durations, say_stale_prices
from batchgen.plan.sheetvalues import SheetValues
from batchgen.plan.text import counted

__all__ = ["Job", "Plan", "build_plan", "file_sha256", "job_key", "plan_table"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_plan(
    target: str | Path,
    *,
    endpoint: str | None = None,
    endpoint_spec: str | Path | Sequence[str | Path] = (),
    sets: dict[str, str] | None = None,
    output: str | Path | None = None,
    filename: str | None = None,
    run: dict[str, Any] | None = None,
    sheet: str | None = None,
    extra_columns: str | None = None,
    skip_hidden_rows: bool | None = None,
    fal: FalSpecs | None = None,
) -> Plan:
    """Plan every job of ``target`` (a prompt file or a job spec); CLI options override.

    ``endpoint_spec``: the user's endpoint spec files (one path, or several), each describing
    its own endpoint; they replace the job spec's. ``sheet`` names the sheet of an XLSX input;
    ``extra_columns="ok"`` keeps columns that look like misspelt parameters as notes instead of
    refusing them (see ``columns``); ``skip_hidden_rows`` leaves an XLSX's hidden rows out
    (None: as the job spec says). ``fal``: where a spec for an endpoint with no built-in one
    comes from (fal's model API, or its cache; see ``falspecs``); None: passthrough.
    """
    target = Path(target)
    spec = (
        load_jobspec(target) if looks_like_spec(target) else JobSpec(path=str(target), input=target)
    )
    spec = _one_of_the_axis(spec, endpoint)
    input_path = spec.input or target
    out_dir = Path(output) if output else spec.output or Path("out") / input_name(input_path)
    # The folder is checked first and reported with any other problem: nothing is sent either way.
    folder = _folder_problems(spec, output, out_dir)
    skip = spec.skip_hidden_rows if skip_hidden_rows is None else skip_hidden_rows
    cells: list[Problem] = []
    try:
        plan, unnamed = _plan(
            target, spec, input_path, out_dir, endpoint, endpoint_spec or (), filename, run, fal
        )
        plan.default_output = not output and spec.output is None
        table = plan_table(spec, target, sheet or spec.sheet, skip)
        cells = table.problems
        plan.records = len(table.records)
        plan.hidden_rows, plan.hidden_left_out = table.hidden_rows, table.hidden_left_out
        plan.sheet = table.sheet
        plan.input_sha256 = table.digest or file_sha256(input_path if spec.rows is None else target)
        plan.warnings.extend(table.notes)
        extra_ok = (extra_columns or spec.extra_columns or "error").lower() == "ok"
        _expand(plan, spec, table, sets or {}, extra_ok, unnamed)
        if fal is not None:
            say_stale_prices(plan, fal)
    except InputError as exc:
        raise InputError([*_with_cells(cells, exc.problems), *folder]) from None
    if cells or folder:
        raise InputError([*cells, *folder])
    return plan


def _one_of_the_axis(spec: JobSpec, endpoint: str | None) -> JobSpec:
    """``--endpoint`` overrides the spec, as every flag does: with a matrix endpoint axis it
    runs that one of the axis's endpoints (InputError for one the axis does not list)."""
    axis = matrix_axis(spec) if endpoint else None
    if axis is None or endpoint is None:
        return spec
    listed = [str(v).strip().strip("/") for v in spec.matrix[axis]]
    wanted = endpoint.strip().strip("/")
    if wanted not in listed:
        raise InputError.one(
            "--endpoint",
            f"{wanted!r} is not one of the endpoints of {spec.path}'s matrix: " + ", ".join(listed),
        )
    # The other endpoints' own defaults have no job to go to: set aside with them.
    own = {k: v for k, v in spec.per_endpoint.items() if k.strip("/") == wanted}
    return dataclasses.replace(spec, matrix={**spec.matrix, axis: [wanted]}, per_endpoint=own)


def _with_cells(cells: list[Problem], problems: list[Problem]) -> list[Problem]:
    """The problems of unknown cells, then the others but those at the same cells (a formula
    with no saved value, not "is required and is empty")."""
    known = {(p.path, p.line, p.column) for p in cells}
    return [*cells, *(p for p in problems if (p.path, p.line, p.column) not in known)]


def plan_table(
    spec: JobSpec, target: Path, sheet: str | None = None, skip_hidden_rows: bool = False
) -> Table:
    """The rows of a plan: the spec's own, or its prompt file's (``sheet`` of an XLSX, its
    hidden rows left out with ``skip_hidden_rows``)."""
    if spec.rows is not None:
        return spec.rows
    if spec.input is not None and spec.input != target and not is_image_set(spec.input):
        reason = not_a_file(spec.input)
        if reason is not None:
            if reason == "no such file":
                reason = f"no such prompt file: {spec.input}"
            else:
                reason = (
                    f"prompt file {spec.input} {reason.replace('cannot read:', 'cannot be read:')}"
                )
            raise InputError.one(
                spec.path,
                reason,
                spec.lines.get("input", 1),
                "input",
                "field",
            )
    return read_table(spec.input or target, sheet=sheet, skip_hidden_rows=skip_hidden_rows)


def _folder_problems(spec: JobSpec, output: str | Path | None, out_dir: Path) -> list[Problem]:
    reason = output_problem(out_dir)
    if reason is None:
        return []
    message = f"output folder {out_dir} {reason}"
    if output:
        return [Problem("--out", None, None, message)]
    if spec.output is not None:
        return [Problem(spec.path, spec.lines.get("output", 1), "output", message, "field")]
    return [Problem(str(out_dir), None, None, f"output folder {reason}")]


def _plan(
    target: Path,
    spec: JobSpec,
    input_path: Path,
    out_dir: Path,
    endpoint: str | None,
    endpoint_spec: str | Path | Sequence[str | Path],
    filename: str | None,
    run: dict[str, Any] | None,
    fal: FalSpecs | None,
) -> tuple[Plan, Problem | None]:
    """The plan's frame, before its jobs: endpoint, settings, template, folder; and the
    problem of a row that names no endpoint when the plan has none (several spec files)."""
    # Each spec file describes its own endpoint. One is the plan's unless another is named;
    # of several, --endpoint picks one. Rows may name any in an endpoint column or the matrix.
    given = [endpoint_spec] if isinstance(endpoint_spec, str | Path) else list(endpoint_spec)
    described = load_described(given or spec.endpoint_specs)
    wanted = (endpoint or spec.endpoint or "").strip("/")
    own = {ep.id: ep for ep in described}.get(wanted) if wanted else next(iter(described), None)
    wrong = id_problem(wanted) if wanted and not own else None
    if wrong is not None:  # it becomes a URL path: refused before anything is asked or sent
        if endpoint:
            raise InputError.one("--endpoint", wrong)
        raise InputError.one(spec.path, wrong, spec.lines.get("endpoint", 1), "endpoint", "field")
    ep = own or resolve(wanted or DEFAULT_ENDPOINT)
    said: list[str] = []
    if ep.passthrough and fal is not None:  # fal publishes the schema of every model
        ep = fal.spec(ep.id) or ep
        said, fal.said[:] = list(fal.said), []
    several = not wanted and len(described) > 1
    unnamed = unnamed_problem(described, spec, flag=bool(given)) if several else None
    settings = spec.run.merged(run or {}, "command line")
    images = spec.rows is None and is_image_set(input_path)
    template = filename or spec.filename or (FOLDER_TEMPLATE if images else DEFAULT_TEMPLATE)
    if filename:
        check_template(filename, "--filename")
    else:
        check_template(template, spec.path, spec.lines.get("filename", 1))
    plan = Plan(
        endpoint=ep,
        jobs=[],
        input_path=str(input_path),
        input_sha256="",
        extra_columns=[],
        output_dir=out_dir,
        settings=settings,
        filename_template=template,
        described=described,
        given=frozenset(run or {})
        | {k.removeprefix("run.") for k in spec.lines if k.startswith("run.")},
    )
    plan.warnings.extend(said)
    if ep.passthrough:
        plan.warnings.append(
            f"endpoint {ep.id!r} has no spec: every column is sent as given and the price is "
            "unknown (pass --endpoint-spec FILE to describe it)"
        )
    return plan, unnamed


def _expand(
    plan: Plan,
    spec: JobSpec,
    table: Table,
    sets: dict[str, str],
    extra_ok: bool,
    unnamed: Problem | None,
) -> None:
    """Check every row and give the plan its jobs; InputError with every problem found."""
    problems: list[Problem] = []
    mix = mix_of(spec, table, plan.endpoint, problems, plan.described, unnamed)
    assert mix.union is not None
    union = mix.union

    # Which file column feeds which parameter; the rest are the input's own columns. A
    # column's problem (a misspelt name) does not stop the rows' own from being found.
    header: list[Problem] = []
    columns = sort_columns(table, union, extra_ok, header, skip=mix.column)
    media = PlanFiles(spec, sets, Path(plan.input_path))
    plan.extra_columns.extend(columns.extra)
    if not extra_ok and not union.passthrough:
        plan.warnings.extend(elsewhere_notes(columns.extra, union, builtin_specs()))
    named = (
        *spec.defaults,
        *sets,
        *spec.matrix,
        *(k for v in spec.per_endpoint.values() for k in v),
    )
    given = {union.lookup(name) or name.strip().lower() for name in named}
    # A prompt column is needed but where every endpoint takes another way to say it (Kling
    # 3.0's multi_prompt: each row's check then asks for one of them).
    optional = all("prompt" in ep.one_of for ep in mix.specs.values()) and bool(mix.specs)
    if "prompt" not in columns.params.values() and "prompt" not in given and not optional:
        raise InputError.one(table.path, _no_prompt(table), table.header_line)

    if not table.records and not table.problems:  # unknown cells are not blank ones
        problems.append(
            Problem(table.path, table.header_line, None, "no rows to run: every row is blank")
        )
    check_values(mix, spec, sets, problems)
    for ep in mix.specs.values():  # refused before anything is sent, or warned about
        said = ep.lifecycle()
        if said is not None and ep.status == "retired":
            problems.append(Problem(table.path, None, None, said))
        elif said is not None:
            plan.warnings.append(said)
    if problems:
        raise InputError([*header, *problems])
    plan.endpoints = dict(mix.specs)
    plan.endpoint = next(iter(mix.specs.values()))
    plan.rows_name_endpoints = mix.column is not None or bool(mix.axis)
    per_row = (
        sum(len(mix.combos[i]) for i in mix.axis)
        if mix.axis
        else max(len(c) for c in mix.combos.values())
    )
    total = len(table.records) * per_row * spec.repeat
    if total > MAX_JOBS:
        key = "repeat" if spec.repeat > 1 else "matrix" if spec.matrix else None
        raise InputError.one(
            spec.path if key else table.path,
            f"this plan would make {total:,} jobs ({counted(len(table.records), 'record')} x "
            f"{counted(per_row, 'matrix combination')} x {counted(spec.repeat, 'repeat')}), "
            "more than "
            f"the {MAX_JOBS:,} one plan may hold; split the batch",
            spec.lines.get(key, 1) if key else None,
            key,
            "field",
        )

    # Each endpoint's own reading of the parameter columns (its names, its aliases).
    column_params = {
        ident: {
            c: p
            for c, name in columns.params.items()
            if (p := name if ep.passthrough else ep.lookup(name) or ep.lookup(c)) is not None
        }
        for ident, ep in mix.specs.items()
    }
    for ident, ep in mix.specs.items():
        check_image_column(table, column_params[ident], ep)
    namer = Namer(plan.filename_template)
    sheet = SheetValues(table.decimal_comma)
    param_column = {i: {p: c for c, p in cp.items()} for i, cp in column_params.items()}
    seen: dict[str, int] = {}
    same = 0
    for row, record in enumerate(table.records, start=1):
        extra = {c: record.values.get(c) for c in plan.extra_columns}
        for ep in mix.endpoints_of(record.values):
            column_param = column_params[ep.id]
            cells_given = {
                column_param[c]: v
                for c, v in record.values.items()
                if c in column_param and v is not None
            }
            cells, doubts = sheet.read(ep, cells_given, param_column[ep.id])
            on = f" (on {ep.id})" if mix.several else ""
            at_cell = functools.partial(at_record, table.path, record, column_param, on=on)
            if doubts:
                problems.extend(at_cell(name, message) for name, message in doubts)
                continue

            def file_cell(at: str, message: str) -> Problem:
                # A file's place counts the items sent; the sheet numbers its columns.
                return at_cell(written_place(record, column_param, at), message)  # noqa: B023

            row_values = overlay(mix.defaults[ep.id], cells)  # a row's list replaces a default's
            for combo in mix.combos[ep.id]:
                payload, row_problems = ep.check(overlay(row_values, combo))
                if row_problems:
                    problems.extend(at_cell(name, message) for name, message in row_problems)
                    # Its files are checked too: every problem of the row at once.
                    media.swap(ep, payload, cells, combo, file_cell, problems)
                    break  # the other combos of this row would repeat the same problems
                swapped = media.swap(ep, payload, cells, combo, file_cell, problems)
                if swapped is None:
                    continue
                payload, files = swapped
                for repeat in range(spec.repeat):
                    key = job_key(ep.id, payload, repeat)
                    if key in seen:
                        if seen[key] == row:  # matrix values this endpoint does not take
                            same += 1
                        else:
                            again = f"row {row} asks the same as row {seen[key]}; it is run once"
                            plan.warnings.append(
                                str(Problem(*record.place(table.path), None, again))
                            )
                        continue
                    seen[key] = row
                    stem = _stem(ep, payload, files)
                    name = _name(namer, spec, row, repeat, key, payload, extra, ep, stem, problems)
                    plan.jobs.append(
                        Job(
                            key=key,
                            row=row,
                            line=record.place(table.path)[1],
                            repeat=repeat,
                            payload=payload,
                            extra=extra,
                            filename=name,
                            cost_usd=ep.cost(payload),
                            endpoint=ep.id,
                            files=files,
                        )
                    )
        if len(problems) > 1000:
            problems.append(Problem(table.path, None, None, "stopped after 1000 problems"))
            break
    if header or problems:
        raise InputError([*header, *problems])
    plan.warnings.extend(sheet.notes(table.path))
    say_auto_durations(plan)
    for ep in plan.described:
        if ep.id not in plan.endpoints:
            plan.warnings.append(f"the endpoint spec for {ep.id!r} is not used: no row runs on it")
    if same:
        plan.warnings.append(
            f"{counted(same, 'job')} of the matrix asked the same as another of its row (an "
            "endpoint without that parameter); each is run once"
        )


def _no_prompt(table: Table) -> str:
    """Why a table has no prompt column, and what to do about it."""
    found = ", ".join(repr(c) for c in table.columns) or "none"
    message = f"no 'prompt' column (columns found: {found})"
    if table.header_is_prose:
        message += (
            "; the first row reads like a prompt, not a header: add a first row naming "
            "the columns (prompt, ...)"
        )
    if table.sheet is not None:
        message += f"; sheet {table.sheet!r} was read"
        if table.other_sheets:
            others = ", ".join(repr(n) for n in table.other_sheets)
            message += f" (other sheets: {others}; choose one with --sheet NAME)"
    return message


def _stem(ep: EndpointSpec, payload: dict[str, Any], files: tuple[InputFile, ...]) -> str:
    """The ``{stem}`` of a job: the file name, without extension, of its first file parameter
    that has a value (the local file, else the URL); ``""`` when there is none."""
    local = {f.param: f.path for f in files}
    for _, at, _, value in file_values(ep, payload):
        return file_stem(local.get(at, value))
    return ""


def _name(
    namer: Namer,
    spec: JobSpec,
    row: int,
    repeat: int,
    key: str,
    payload: dict[str, Any],
    extra: dict[str, Any],
    ep: EndpointSpec,
    stem: str,
    problems: list[Problem],
) -> str:
    fields = {k: ("" if v is None else v) for k, v in extra.items()}
    fields.update(payload)
    # A multi-shot job without a prompt is named after its first shot.
    shots = payload.get("multi_prompt")
    first = (
        shots[0].get("prompt")
        if isinstance(shots, list) and shots and isinstance(shots[0], dict)
        else ""
    )
    prompt_slug = slug(str(payload.get("prompt") or first or ""))
    fields.update(
        row=row,
        repeat=repeat,
        key=key,
        key8=key[:8],
        slug=prompt_slug,
        stem=stem or prompt_slug,
        endpoint=slug(ep.id, 80),
        model=model_slug(ep.id),
    )
    try:
        return namer.name(fields)
    except (KeyError, ValueError, IndexError) as exc:
        available = ", ".join(sorted(fields))
        problems.append(
            Problem(
                spec.path,
                spec.lines.get("filename", 1),
                "filename",
                f"template {namer.template!r} cannot be filled ({exc}); fields: {available}",
                "field",
            )
        )
        raise InputError(problems) from None
