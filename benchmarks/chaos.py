"""Chaos: 200 jobs against a faulty emulator while a seeded "user" kills, signals, edits and
deletes, then the invariants of issue 9: nothing paid twice, nothing lost.

    python benchmarks/chaos.py --seeds 1 2 3 4 5 [--jobs 200] [--keep] [--skip delete-ledger ...]

For each seed: an emulator in its own process (time-scaled, seeded faults: 429s, ingress 503,
connection resets, runner_disconnected, request_timeout, dropped submit answers, truncated
downloads, ignored cancels), and `python -m batchgen run` subprocesses on one folder. During the
first rounds a random action hits each run (SIGKILL, SIGTERM, SIGHUP, SIGINT once or twice, a
second run on the same folder, a CDN outage through POST /_mock/config, a SIGSTOP of 3-6 s with
`--request-timeout 2`, as a closed laptop lid with requests in flight) and between runs a row
of the CSV may be edited or the ledger deleted. Then plain runs, and `--retry-failed`, until
every row is done or the rounds run out. At the end, with the emulator's faults off:

- every row of the input is done, its file's sha256 and size those the emulator served;
- every video the emulator completed for a request id batchgen recorded is in the folder;
- every payload submitted more than once is explained: a lost submit answer (the job is flagged
  ``possibly_duplicate``), or a resubmit batchgen knew of after a transient failure
  (runner_disconnected, request_timeout) or a cancel; anything else is unexplained;
- no traceback in any stderr; a second run on a live folder exits 2 and sends nothing.

``--respell`` puts a proxy with its own spelling (``tests/respell.py``: lower-case and other
status words, ``{"data": ...}`` envelopes, gzip-encoded videos, no ``Range``) between the runs
and the emulator: the same invariants must hold through it. ``--repeat-ids N`` puts one that
answers every N-th submit with the previous submit's request id (``tests/oddproxy.py``): each
such row is flagged, never paired with the other row's video, and done by ``--retry-failed``.
Between runs the user may also rotate the key: the emulator refuses the old one, and the next
runs send a new one of the same account in the same variable.

The action log of a seed is printed with its violations: the same seed replays the same actions
(timings on a busy machine vary, so a replay is close, not exact). Exit 1 if any invariant fails.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batchgen.mock.stats import payload_digest  # noqa: E402

KEY = "chaos-key-0123456789"
APP = "fal-ai/kling-video"
TRANSIENT = {"runner_disconnected", "request_timeout"}
FAULTS = {
    "fault_429": 0.03,
    "fault_429_retry_after": 0.02,
    "fault_503": 0.03,
    "fault_reset": 0.02,
    "fault_submit_drop": 0.03,
    "fault_runner_disconnected": 0.04,
    "fault_request_timeout": 0.03,
    "fault_cancel_ignored": 0.5,
    "fault_truncate": 0.05,
}
IN_RUN_ACTIONS = {
    "none": 2,
    "sigkill": 3,
    "sigterm": 2,
    "sighup": 2,
    "sigint": 2,
    "sigint2": 2,
    "concurrent": 2,
    "freeze": 2,
}
FREEZE_REQUEST_TIMEOUT = 2.0  # real seconds: a freeze outlasts it, so its deadlines pass frozen
RUN_TIMEOUT = 180.0  # real seconds: a run that outlives this hangs


@dataclass
class Seed:
    """What one seed did and found."""

    seed: int
    jobs: int
    actions: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rounds: int = 0
    dup_flagged: int = 0
    dup_transient: int = 0
    dup_cancel: int = 0
    dup_unexplained: int = 0
    rows_done: int = 0
    rows: int = 0
    wall: float = 0.0

    def act(self, round_no: int, text: str) -> None:
        self.actions.append(f"r{round_no}: {text}")

    def fail(self, kind: str, text: str) -> None:
        self.violations.append((kind, text))

    @property
    def action_count(self) -> int:
        return sum(1 for a in self.actions if not a.split(": ", 1)[1].startswith("run"))


# --- the emulator --------------------------------------------------------------------------


@contextmanager
def emulator(
    folder: Path,
    seed: int,
    scale: float,
    rates: dict[str, float] = FAULTS,
    extra: tuple[str, ...] = (),
) -> Iterator[tuple[str, Path]]:
    """``batchgen mock`` in its own process, its stderr to a file (a pipe could fill up)."""
    faults = [x for name, rate in rates.items() for x in (f"--{name.replace('_', '-')}", f"{rate}")]
    faults += extra
    log = folder / "emulator.stderr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "batchgen", "mock", "--port", "0", "--api-key", KEY]
    command += ["--time-scale", str(scale), "--latency", "110", "--latency-jitter", "0.2"]
    command += ["--queue-delay", "1", "--max-in-progress", "8", "--seed", str(seed), *faults]
    with log.open("w") as sink:
        proc = subprocess.Popen(command, stderr=sink, env=env)
    try:
        deadline = time.monotonic() + 30
        while "serving on" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start: {log.read_text()}")
            time.sleep(0.05)
        line = log.read_text().split("serving on ", 1)[1]
        yield line.split()[0], log
    finally:
        proc.terminate()
        proc.wait(10)


def call(base: str, path: str, body: Any = None, auth: bool = False) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Key {KEY}"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


def set_config(base: str, **changes: Any) -> None:
    code, body = call(base, "/_mock/config", changes)
    if code != 200:
        raise RuntimeError(f"POST /_mock/config {changes}: {code} {body}")


class Sentinel:
    """A loopback port that counts every connection: where a refused run must not go."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


# --- the folder ----------------------------------------------------------------------------


def write_prompts(path: Path, prompts: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt"])
        writer.writerows([f"c{i:03d}", p] for i, p in enumerate(prompts))


def read_manifest(out: Path) -> list[dict[str, Any]]:
    path = out / "manifest.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class History:
    """Everything the ledger ever said, kept across ledger deletions."""

    request_ids: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    first_seen: dict[str, int] = field(default_factory=dict)  # request id -> round
    deletions: list[int] = field(default_factory=list)  # rounds run on a deleted ledger
    # payload digest -> the rounds in which the emulator saw it submitted (once per submit)
    submit_rounds: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _submits: Counter[str] = field(default_factory=Counter)
    flagged: set[str] = field(default_factory=set)
    digest_key: dict[str, str] = field(default_factory=dict)

    def count_submits(self, base: str, round_no: int) -> None:
        seen = Counter(call(base, "/_mock/stats")[1]["submits_by_payload"])
        for digest, count in (seen - self._submits).items():
            self.submit_rounds[digest] += [round_no] * count
        self._submits = seen

    def snapshot(self, out: Path, round_no: int) -> None:
        db_path = out / "batchgen.db"
        if not db_path.exists():
            return
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            for key, payload, request_id, dup in db.execute(
                "SELECT key, payload, request_id, possibly_duplicate FROM jobs"
            ):
                self.digest_key[payload_digest(json.loads(payload))] = key
                if request_id:
                    self.request_ids[key].add(request_id)
                    self.first_seen.setdefault(request_id, round_no)
                if dup:
                    self.flagged.add(key)
            for key, request_id in db.execute("SELECT key, request_id FROM requests"):
                self.request_ids[key].add(request_id)
                self.first_seen.setdefault(request_id, round_no)
        finally:
            db.close()

    def across_deletion(self, rids: set[str], digest: str | None = None) -> str:
        """`` (ledger deleted between its submits)`` if the job was submitted (or given one of
        ``rids``) before a deletion and again after it."""
        rounds = [self.first_seen.get(rid, 0) for rid in rids]
        if digest is not None:
            rounds += self.submit_rounds.get(digest, [])
        if rounds and any(min(rounds) < d <= max(rounds) for d in self.deletions):
            return " (ledger deleted between its submits)"
        return ""

    def from_manifest(self, records: list[dict[str, Any]], round_no: int) -> None:
        for record in records:
            if record.get("request_id"):
                self.request_ids[record["key"]].add(record["request_id"])
                self.first_seen.setdefault(record["request_id"], round_no)
            if record.get("possibly_duplicate"):
                self.flagged.add(record["key"])


@contextmanager
def proxy(folder: Path, base: str, script: str, *args: str) -> Iterator[str]:
    """``tests/<script>`` (a proxy: ``respell.py``, ``oddproxy.py``) in front of the emulator
    at ``base``, in its own process; its URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "tests" / script), base, *args]
    with (folder / f"{script}.stderr").open("w") as sink:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "serving on" not in line:
            raise RuntimeError(f"proxy {script} did not start: {line!r}")
        yield line.split("serving on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


# --- one run -------------------------------------------------------------------------------


@dataclass
class Ctx:
    seed: Seed
    rng: random.Random
    base: str
    folder: Path
    csv: Path
    out: Path
    scale: float
    sentinel: Sentinel
    api: str = ""  # where runs send their requests: the emulator, or a proxy in front of it
    key: str = KEY  # the key runs send: rotated (the emulator refusing the old one) by a user
    stderrs: list[Path] = field(default_factory=list)
    runs: int = 0

    def command(self, *extra: str, base: str | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "batchgen",
            "run",
            str(self.csv),
            "--out",
            str(self.out),
            "--provider",
            "mock",
            "--base-url",
            base or self.api or self.base,
            "--progress",
            "lines",
            "--time-scale",
            str(self.scale),
            "--concurrency",
            "8",
            "--rate",
            "300",
            "--job-timeout",
            "130",
            *extra,
        ]

    def start(self, *extra: str, base: str | None = None) -> tuple[subprocess.Popen[bytes], Path]:
        self.runs += 1
        err = self.folder / f"run{self.runs:02d}.stderr"
        env = {**os.environ, "PYTHONPATH": str(REPO), "BATCHGEN_MOCK_KEY": self.key}
        with err.open("wb") as sink:
            proc = subprocess.Popen(
                self.command(*extra, base=base), stdout=subprocess.DEVNULL, stderr=sink, env=env
            )
        self.stderrs.append(err)
        return proc, err


def wait(proc: subprocess.Popen[bytes], ctx: Ctx, what: str, timeout: float = RUN_TIMEOUT) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        ctx.seed.fail("hang", f"{what}: still running after {timeout:.0f} s (hang); killed")
        proc.kill()
        return proc.wait()


def one_run(ctx: Ctx, round_no: int, action: str, outage: tuple[float, float] | None) -> int:
    """Start a run, do ``action`` to it (and a CDN outage), wait for its end; its exit code."""
    s = ctx.seed
    extra: tuple[str, ...] = ("--retry-failed",) if action == "retry-failed" else ()
    if action == "freeze":
        extra = ("--request-timeout", str(FREEZE_REQUEST_TIMEOUT))
    proc, err = ctx.start(*extra)
    started = time.monotonic()
    at = ctx.rng.uniform(0.5, 10.0)
    events: list[tuple[float, str]] = []
    if action not in ("none", "retry-failed"):
        events.append((at, action))
    if outage is not None:
        events += [(outage[0], "outage-on"), (outage[0] + outage[1], "outage-off")]
    events.sort()
    outage_on = False
    for when, event in events:
        while proc.poll() is None and time.monotonic() - started < when:
            time.sleep(0.01)
        if event == "outage-off" and outage_on:
            set_config(ctx.base, fault_file_503=0.0)
            outage_on = False
            s.act(round_no, f"CDN outage ends at {when:.2f}s")
            continue
        if proc.poll() is not None:
            s.act(round_no, f"{event} at {when:.2f}s skipped: the run had ended")
            continue
        if event == "outage-on":
            set_config(ctx.base, fault_file_503=1.0)
            outage_on = True
            s.act(round_no, f"CDN outage starts at {when:.2f}s")
        elif event == "concurrent":
            concurrent(ctx, round_no, proc, when)
        elif event == "freeze":
            frozen = ctx.rng.uniform(1.5, 3.0) * FREEZE_REQUEST_TIMEOUT
            proc.send_signal(signal.SIGSTOP)
            time.sleep(frozen)
            proc.send_signal(signal.SIGCONT)
            s.act(round_no, f"SIGSTOP at {when:.2f}s for {frozen:.1f}s")
        elif event == "sigint2":
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            s.act(round_no, f"SIGINT twice at {when:.2f}s")
        else:
            signum = {
                "sigkill": signal.SIGKILL,
                "sigterm": signal.SIGTERM,
                "sighup": signal.SIGHUP,
                "sigint": signal.SIGINT,
            }[event]
            proc.send_signal(signum)
            s.act(round_no, f"{signum.name} at {when:.2f}s")
    code = wait(proc, ctx, f"round {round_no} run ({action})")
    if outage_on:
        set_config(ctx.base, fault_file_503=0.0)
        s.act(round_no, "CDN outage ends with the run")
    s.exits.append(f"r{round_no}:{code}")
    if code not in (0, 1, 130, -9):
        tail = err.read_text(errors="replace").strip().splitlines()[-3:]
        s.fail("exit code", f"round {round_no}: exit {code} ({action}): {' | '.join(tail)}")
    return code


def concurrent(ctx: Ctx, round_no: int, first: subprocess.Popen[bytes], when: float) -> None:
    """A second run on the live folder, pointed at the sentinel: refused, exit 2, sends nothing."""
    s = ctx.seed
    before = ctx.sentinel.connections
    second, err = ctx.start(base=ctx.sentinel.url)
    code = wait(second, ctx, f"round {round_no} concurrent run", timeout=60)
    alive = first.poll() is None
    text = err.read_text(errors="replace")
    sent = ctx.sentinel.connections - before
    s.act(round_no, f"second run at {when:.2f}s: exit {code}, {sent} connections")
    s.exits.append(f"r{round_no}:concurrent:{code}")
    if not alive:
        s.notes.append(f"round {round_no}: the first run ended while the second one ran")
        return
    if code != 2 or sent or str(first.pid) not in text:
        last = text.strip().splitlines()[-1:] or [""]
        s.fail(
            "second run",
            f"round {round_no}: a second run on a live folder: exit {code}, "
            f"{sent} connections sent, says {last[0]!r} (first run pid {first.pid})",
        )


# --- between runs --------------------------------------------------------------------------


def edit_row(ctx: Ctx, prompts: list[str], round_no: int) -> None:
    index = ctx.rng.randrange(len(prompts))
    prompts[index] = f"{prompts[index].split(' (edit')[0]} (edit r{round_no})"
    write_prompts(ctx.csv, prompts)
    ctx.seed.act(round_no, f"edit row {index + 1} (id c{index:03d})")


def rotate_key(ctx: Ctx, round_no: int) -> None:
    """The key is revoked and a new one of the same account put in the same variable."""
    ctx.key = f"chaos-key-rotated-in-round-{round_no}"
    set_config(ctx.base, api_keys=[ctx.key])  # the old key answers 401 from now on
    ctx.seed.act(round_no, "rotate the key (the old one revoked)")


def delete_ledger(ctx: Ctx, round_no: int) -> None:
    gone = []
    for name in ("batchgen.db", "batchgen.db-wal", "batchgen.db-shm"):
        path = ctx.out / name
        if path.exists():
            path.unlink()
            gone.append(name)
    ctx.seed.act(round_no, f"delete {', '.join(gone) or 'nothing (no ledger yet)'}")


# --- the invariants ------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outcome(base: str, request_id: str) -> str:
    """How the emulator ended a request id: ``ok``, an ``error_type``, or its state."""
    code, body = call(base, f"/{APP}/requests/{request_id}/status", auth=True)
    if code == 404:
        return "unknown"
    if body.get("status") != "COMPLETED":
        return str(body.get("status"))
    return str(body.get("error_type") or "ok")


def check(ctx: Ctx, history: History, prompts: list[str]) -> None:
    s = ctx.seed
    # Faults off, and KEY (the one the checks read with) accepted again beside the last key.
    set_config(ctx.base, **{name: 0.0 for name in FAULTS}, api_keys=sorted({KEY, ctx.key}))
    stats = call(ctx.base, "/_mock/stats")[1]
    served = stats["files"]
    records = read_manifest(ctx.out)
    history.from_manifest(records, s.rounds)
    current = {r["key"]: r for r in records if r.get("in_input")}
    s.rows = len(prompts)
    wanted = Counter(prompts)
    got = Counter(str(r.get("prompt")) for r in current.values())
    if got != wanted:
        missing = sorted((wanted - got).elements())[:3]
        extra = sorted((got - wanted).elements())[:3]
        s.fail("rows", f"manifest rows != input rows: missing {missing}, extra {extra}")

    for record in current.values():
        if record["status"] != "done":
            s.fail(
                f"row not done ({record['status']})",
                f"row {record['row']} ({record.get('id')}) not done: {record['status']}: "
                f"{record.get('error')}",
            )
            continue
        s.rows_done += 1
        check_file(ctx, record, served, "row")

    # Every request id batchgen recorded: how it ended at the provider.
    ends: dict[str, str] = {}
    for rids in history.request_ids.values():
        for rid in rids:
            ends[rid] = outcome(ctx.base, rid)
    by_key = {r["key"]: r for r in records}
    for key, rids in history.request_ids.items():
        paid = sorted(rid for rid in rids if ends[rid] == "ok")
        record = by_key.get(key)
        tag = history.across_deletion(rids)
        if len(paid) > 1:
            s.fail("paid twice", f"key {key[:12]}: {len(paid)} request ids completed: {paid}{tag}")
        for rid in paid:
            if record is None:
                seen = history.first_seen.get(rid, 0)
                if any(seen < deleted for deleted in history.deletions):
                    tag = " (ledger deleted after its submit)"
                s.fail(
                    "video lost" + tag,
                    f"request {rid} completed (first seen in round {seen}) but key {key[:12]} "
                    "is not in the manifest",
                )
            elif record["status"] != "done" or record.get("request_id") != rid:
                s.fail(
                    "video lost" + tag,
                    f"request {rid} completed (row {record['row']}, in_input "
                    f"{record.get('in_input')}) but the job is {record['status']} with request "
                    f"{record.get('request_id')}: {record.get('error')}",
                )
            elif not record.get("in_input"):
                check_file(ctx, record, served, "kept video of an edited row")

    # Every payload submitted more than once, explained or not.
    for digest, count in stats["submits_by_payload"].items():
        if count < 2:
            continue
        key = history.digest_key.get(digest)
        if key is None:
            s.fail(
                "unexplained duplicate submit",
                f"payload {digest[:12]} submitted {count}x, no job has it",
            )
            s.dup_unexplained += count - 1
            continue
        rids = history.request_ids[key]
        tag = history.across_deletion(rids, digest)
        kinds = Counter(ends[rid] for rid in rids)
        known_extra = max(len(rids) - 1, 0)
        transient = min(known_extra, sum(kinds[k] for k in TRANSIENT))
        cancelled = min(known_extra - transient, kinds["client_cancelled"])
        other_known = known_extra - transient - cancelled
        lost = count - len(rids)  # submits whose answer batchgen never read
        flagged = lost if key in history.flagged and lost > 0 else 0
        s.dup_transient += transient
        s.dup_cancel += cancelled
        s.dup_flagged += flagged
        unexplained = other_known + (lost - flagged if lost > 0 else 0)
        if unexplained:
            s.dup_unexplained += unexplained
            row = by_key.get(key, {})
            s.fail(
                "unexplained duplicate submit" + tag,
                f"payload of key {key[:12]} (row {row.get('row')}, {row.get('status')}) "
                f"submitted {count}x: request ids batchgen knows {len(rids)} "
                f"({dict(kinds)}), flagged {key in history.flagged}: {unexplained} unexplained; "
                f"submitted in rounds {history.submit_rounds.get(digest)}",
            )

    for path in ctx.stderrs:
        if "Traceback" in path.read_text(errors="replace"):
            s.fail("traceback", f"traceback in {path.name}")


def check_file(ctx: Ctx, record: dict[str, Any], served: dict[str, Any], what: str) -> None:
    s = ctx.seed
    rid = record.get("request_id")
    path = ctx.out / str(record.get("video_path"))
    entry = served.get(rid or "")
    where = f"{what} {record['row']} ({record.get('id')}, request {rid})"
    if entry is None:
        s.fail("file", f"{where}: the emulator never served this request's file")
    elif not path.is_file():
        s.fail("file", f"{where}: {record.get('video_path')} is missing")
    else:
        actual = sha256(path)
        if (actual, path.stat().st_size) != (entry["sha256"], entry["size"]):
            s.fail(
                "file",
                f"{where}: file sha256/size {actual[:12]}/{path.stat().st_size} != served "
                f"{entry['sha256'][:12]}/{entry['size']}",
            )
        if record.get("sha256") != actual or record.get("bytes") != path.stat().st_size:
            s.fail("file", f"{where}: manifest sha256/bytes do not match the file")


# --- one seed ------------------------------------------------------------------------------


def run_seed(
    seed: int,
    jobs: int,
    scale: float,
    chaos_rounds: int,
    max_rounds: int,
    keep: bool,
    skip: set[str],
    respell: bool = False,
    repeat_ids: int = 0,
) -> Seed:
    result = Seed(seed, jobs)
    rng = random.Random(f"chaos:{seed}")
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-"))
    started = time.monotonic()
    prompts = [f"chaos {seed} shot {i}: a lighthouse in a storm, take {i}" for i in range(jobs)]
    history = History()
    try:
        with contextlib.ExitStack() as stack:
            base, emu_log = stack.enter_context(emulator(folder, seed, scale))
            ctx = Ctx(
                result, rng, base, folder, folder / "prompts.csv", folder / "out", scale, Sentinel()
            )
            if respell:
                ctx.api = stack.enter_context(proxy(folder, base, "respell.py"))
            elif repeat_ids:
                every = ("repeat", "--every", str(repeat_ids))
                ctx.api = stack.enter_context(proxy(folder, base, "oddproxy.py", *every))
            write_prompts(ctx.csv, prompts)
            last = None
            for round_no in range(1, max_rounds + 1):
                result.rounds = round_no
                chaotic = round_no <= chaos_rounds
                if chaotic and round_no > 1:
                    if rng.random() < 0.35 and "edit" not in skip:
                        edit_row(ctx, prompts, round_no)
                    if rng.random() < 0.25 and "delete-ledger" not in skip:
                        delete_ledger(ctx, round_no)
                        history.deletions.append(round_no)
                    if rng.random() < 0.2 and "rotate-key" not in skip:
                        rotate_key(ctx, round_no)
                if chaotic:
                    names, weights = zip(*IN_RUN_ACTIONS.items(), strict=True)
                    action = rng.choices(names, weights)[0]
                    if action in skip:
                        action = "none"
                    outage = None
                    window = (rng.uniform(0.3, 8.0), rng.uniform(0.5, 5.0))
                    if rng.random() < 0.3 and "outage" not in skip:
                        outage = window
                else:
                    action = "retry-failed" if last == 1 else "none"
                    outage = None
                result.act(round_no, f"run{' --retry-failed' if action == 'retry-failed' else ''}")
                last = one_run(ctx, round_no, action, outage)
                history.snapshot(ctx.out, round_no)
                history.count_submits(base, round_no)
                records = read_manifest(ctx.out)
                history.from_manifest(records, round_no)
                done = all(r["status"] == "done" for r in records if r.get("in_input"))
                if not chaotic and last == 0 and done and len(records) >= jobs:
                    break
            ctx.stderrs.append(emu_log)
            check(ctx, history, prompts)
    finally:
        result.wall = time.monotonic() - started
        if keep or result.violations:
            result.notes.append(f"folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return result


# --- the cases of issue 20 -----------------------------------------------------------------
#
# Each case runs one batch on a clean emulator (no seeded faults) through one fault, then
# resumes plainly if rows are left, and counts what it cost: rows done after the first run,
# resubmits (submits beyond one per payload), links refused and read afresh.


@dataclass
class Case:
    """What one case did and found."""

    name: str
    jobs: int
    exits: list[int] = field(default_factory=list)
    done_first: int = 0  # rows done when the first run ended
    done: int = 0  # rows done at the end
    resubmits: int = 0
    refused: int = 0  # file downloads the emulator refused as expired or unsigned links
    wall: float = 0.0
    violations: list[str] = field(default_factory=list)


# name -> (outage in emulated seconds from the first download it refuses, signed links' ttl,
# --download-patience, whether every row must be done by the first run)
CASES: dict[str, tuple[float, float | None, float | None, bool]] = {
    "outage-60s": (60.0, None, None, True),
    "outage-10min": (600.0, None, None, True),
    "outage-14min": (840.0, None, None, True),  # the patience is 15 min
    "outage-20min": (1200.0, None, None, False),  # left downloading; a plain resume fetches
    "expiry": (120.0, 30.0, None, True),  # links expire during the outage
    "expiry-resume": (300.0, 30.0, 60.0, False),  # links expired before the resume
}


def run_case(name: str, jobs: int, scale: float) -> Case:
    outage, ttl, patience, same_run = CASES[name]
    case = Case(name, jobs)
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
    started = time.monotonic()
    extra = () if ttl is None else ("--file-link-ttl", str(ttl))
    try:
        with emulator(folder, 1, scale, {}, extra) as (base, _):
            seed = Seed(0, jobs)
            ctx = Ctx(
                seed,
                random.Random(0),
                base,
                folder,
                folder / "p.csv",
                folder / "out",
                scale,
                Sentinel(),
            )
            write_prompts(ctx.csv, [f"{name} shot {i}: a lighthouse" for i in range(jobs)])
            set_config(base, fault_file_503=1.0)
            # Jobs of 110 s +- 20 %: no job timeout in the way (the last --job-timeout counts).
            args = ("--job-timeout", "600")
            if patience is not None:
                args += ("--download-patience", str(patience))
            proc, _ = ctx.start(*args)
            while proc.poll() is None and not call(base, "/_mock/stats")[1]["faults"]:
                time.sleep(0.01)  # the outage counts from the first download it refuses
            ends = time.monotonic() + outage * scale
            while proc.poll() is None and time.monotonic() < ends:
                time.sleep(0.01)
            time.sleep(max(0.0, ends - time.monotonic()))
            set_config(base, fault_file_503=0.0)
            case.exits.append(wait(proc, ctx, f"{name} run"))
            case.done_first = sum(r["status"] == "done" for r in read_manifest(ctx.out))
            if case.done_first < jobs:
                proc, _ = ctx.start("--job-timeout", "600")
                case.exits.append(wait(proc, ctx, f"{name} resume"))
            stats = call(base, "/_mock/stats")[1]
            records = read_manifest(ctx.out)
            case.done = sum(r["status"] == "done" for r in records)
            for record in records:
                if record["status"] == "done":
                    check_file(ctx, record, stats["files"], "row")
                else:
                    seed.fail("row", f"row {record['row']}: {record['status']}: {record['error']}")
            case.resubmits = sum(n - 1 for n in stats["submits_by_payload"].values())
            case.refused = int(stats["faults"].get("link_refused", 0))
            case.violations = [text for _, text in seed.violations]
            for path in ctx.stderrs:
                if "Traceback" in path.read_text(errors="replace"):
                    case.violations.append(f"traceback in {path.name}")
    finally:
        case.wall = time.monotonic() - started
        shutil.rmtree(folder, ignore_errors=True)
    if case.done != jobs or case.resubmits:
        case.violations.append(f"{case.done}/{jobs} done, {case.resubmits} resubmits")
    if same_run and case.done_first != jobs:
        case.violations.append(f"only {case.done_first}/{jobs} done in the same run")
    if ttl is not None and not case.refused:
        case.violations.append("no link was refused: the case tested nothing")
    return case


def print_cases(cases: list[Case], scale: float) -> None:
    print(f"cases (emulated seconds; time scale {scale:g}: waits and patience scaled alike)")
    header = (
        "case",
        "jobs",
        "exits",
        "done in run 1",
        "done",
        "resubmits",
        "links refused",
        "wall s",
        "violations",
    )
    print(" | ".join(header))
    for c in cases:
        cells = (
            c.name,
            c.jobs,
            " ".join(map(str, c.exits)),
            f"{c.done_first}/{c.jobs}",
            f"{c.done}/{c.jobs}",
            c.resubmits,
            c.refused,
            f"{c.wall:.1f}",
            len(c.violations),
        )
        print(" | ".join(str(cell) for cell in cells))
        for text in c.violations:
            print(f"  VIOLATION {c.name}: {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=0.004)
    parser.add_argument("--chaos-rounds", type=int, default=6)
    parser.add_argument("--max-rounds", type=int, default=12)
    parser.add_argument(
        "--keep", action="store_true", help="keep every seed's folder and print its actions"
    )
    parser.add_argument(
        "--respell",
        action="store_true",
        help="run through tests/respell.py (a proxy spelling status its own way) in front of it",
    )
    parser.add_argument(
        "--repeat-ids",
        type=int,
        default=0,
        metavar="N",
        help="run through tests/oddproxy.py, which answers every N-th submit with the "
        "previous submit's request id (not with --respell)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[*IN_RUN_ACTIONS, "edit", "delete-ledger", "rotate-key", "outage"],
        help="actions not to take (the others are drawn as without it)",
    )
    parser.add_argument(
        "--cases",
        nargs="*",
        default=None,
        choices=[*CASES, "all"],
        help="run these cases of issue 20 (a CDN outage, expiring links) instead of the seeds",
    )
    parser.add_argument("--case-jobs", type=int, default=40)
    args = parser.parse_args()
    if args.cases is not None:
        names = list(CASES) if "all" in args.cases or not args.cases else args.cases
        done = []
        for name in names:
            done.append(run_case(name, args.case_jobs, args.time_scale))
            print(
                f"{name}: {done[-1].done}/{done[-1].jobs} done, exits {done[-1].exits}", flush=True
            )
        print_cases(done, args.time_scale)
        return 1 if any(c.violations for c in done) else 0
    skip = set(args.skip)
    results = []
    for seed in args.seeds:
        r = run_seed(
            seed,
            args.jobs,
            args.time_scale,
            args.chaos_rounds,
            args.max_rounds,
            args.keep,
            skip,
            args.respell,
            args.repeat_ids,
        )
        results.append(r)
        print(
            f"seed {seed}: {r.rows_done}/{r.rows} rows done, {r.rounds} rounds, "
            f"{r.action_count} actions, duplicate submits: flagged {r.dup_flagged}, transient "
            f"{r.dup_transient}, after a cancel {r.dup_cancel}, unexplained {r.dup_unexplained}; "
            f"exits {' '.join(r.exits)}; {r.wall:.1f} s; {len(r.violations)} violations",
            flush=True,
        )
        for note in r.notes:
            print(f"  note: {note}")
        kinds = Counter(kind for kind, _ in r.violations)
        for kind, count in kinds.items():
            examples = [text for k, text in r.violations if k == kind]
            print(f"  VIOLATION {kind}: {count}")
            for text in examples[:4]:
                print(f"    {text}")
            if count > 4:
                print(f"    ... {count - 4} more")
        if r.violations or args.keep:
            print("  actions: " + "; ".join(r.actions))
    print()
    header = (
        "seed",
        "jobs",
        "rounds",
        "actions",
        "dup flagged",
        "dup transient",
        "dup after cancel",
        "dup unexplained",
        "rows done",
        "wall s",
        "violations",
    )
    print(" | ".join(header))
    for r in results:
        cells = (
            r.seed,
            r.jobs,
            r.rounds,
            r.action_count,
            r.dup_flagged,
            r.dup_transient,
            r.dup_cancel,
            r.dup_unexplained,
            f"{r.rows_done}/{r.rows}",
            f"{r.wall:.1f}",
            len(r.violations),
        )
        print(" | ".join(str(c) for c in cells))
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
