"""Enough file descriptors for a run, and no traceback when there are not.

Every job in flight holds a connection (a status stream, a poll, its submit), every download
a connection and its ``.part`` file, and the in-process emulator of ``--mock`` the other end
of each connection; the process itself keeps some open (the ledger and its journal, the run
log, the event loop, the certificate store). ``fit`` estimates that need (``needed``) and, when
the soft ``RLIMIT_NOFILE`` is below it, raises the soft limit toward the hard one (an
unprivileged process may); when the hard limit is too low as well, it lowers the run's
concurrency (then its downloads) to what fits, and says so once. The estimate is a ceiling:
measured on the emulator (``--mock``, 300 jobs, 4 downloads), a run held at most 27
descriptors at ``--concurrency 1``, 133 at 50 and 493 at 200 (estimated: 47, 194, 644).

Out of descriptors all the same, the emulator's accept loop prints no traceback
(``batchgen.mock.server.quiet_accept_errors``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

if sys.platform != "win32":  # Windows has no such limit to raise
    import resource

log = logging.getLogger("batchgen.run")

BASE = 32  # the process: stdio, the ledger (db, journal, a connection per thread), the log...
PER_JOB = 2  # a job in flight: its connection, and another while a submit or a poll overlaps
PER_DOWNLOAD = 2  # a download: its connection and its .part file
SERVED = 1  # the in-process emulator's end of a job's (or a download's) connection


@dataclass(frozen=True, slots=True)
class Fit:
    """What ``fit`` decided: the concurrency and downloads the run gets, the soft limit now
    in effect (None: unlimited or unknown), and the one warning to show (None: nothing
    was lowered)."""

    concurrency: int
    downloads: int
    limit: int | None
    warning: str | None = None


def needed(concurrency: int, downloads: int, *, emulator: bool = False) -> int:
    """The descriptors a run of ``concurrency`` jobs in flight and ``downloads`` downloads
    at once may hold (with its in-process ``emulator``: both ends)."""
    per_job = PER_JOB + (SERVED if emulator else 0)
    per_download = PER_DOWNLOAD + (SERVED if emulator else 0)
    return BASE + concurrency * per_job + downloads * per_download


def fit(
    concurrency: int,
    downloads: int,
    *,
    emulator: bool = False,
    limits: tuple[int, int] | None = None,
    setlimit: Callable[[int, int], None] | None = None,
) -> Fit:
    """Raise the soft limit of open files to what the run needs, up to the hard limit; if
    that is not enough, lower concurrency (then downloads) to fit. ``limits`` (soft, hard)
    and ``setlimit(soft, hard)`` default to this process's (``resource``)."""
    if limits is None:
        if sys.platform == "win32":
            return Fit(concurrency, downloads, None)
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    if setlimit is None:
        setlimit = _setrlimit
    soft, hard = limits
    want = needed(concurrency, downloads, emulator=emulator)
    if _unlimited(soft) or soft >= want:
        return Fit(concurrency, downloads, None if _unlimited(soft) else soft)
    target = want if _unlimited(hard) else min(want, hard)
    if target > soft:
        try:
            setlimit(target, hard)
        except (OSError, ValueError) as exc:  # macOS refuses some values; a sandbox may
            log.info("open files: the limit stays %d (%s)", soft, exc)
        else:
            log.info("open files: limit raised from %d to %d (needed: %d)", soft, target, want)
            soft = target
    if soft >= want:
        return Fit(concurrency, downloads, soft)
    lowered, fewer = _within(soft, concurrency, downloads, emulator)
    what = f"--concurrency {concurrency} to {lowered}"
    if fewer != downloads:
        what += f" and --download-concurrency {downloads} to {fewer}"
    hard_text = "unlimited" if _unlimited(hard) else str(hard)
    warning = (
        f"only {soft} files may be open at once (ulimit -n; hard limit {hard_text}), too few "
        f"for this run (about {want}): {what}. Raise it with `ulimit -n {want}` for the full "
        "concurrency"
    )
    return Fit(lowered, fewer, soft, warning)


def _within(limit: int, concurrency: int, downloads: int, emulator: bool) -> tuple[int, int]:
    """The largest concurrency (at least 1) whose need fits ``limit``, with fewer downloads
    (at least 1) only when one job does not fit beside them."""
    for fewer in range(downloads, 0, -1):
        spare = limit - needed(0, fewer, emulator=emulator)
        per_job = needed(1, 0, emulator=emulator) - needed(0, 0, emulator=emulator)
        if spare >= per_job:
            return min(concurrency, spare // per_job), fewer
    return 1, 1


def _unlimited(value: int) -> bool:
    return sys.platform != "win32" and value == resource.RLIM_INFINITY


def _setrlimit(soft: int, hard: int) -> None:
    if sys.platform != "win32":
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
