"""A real, throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` in a temp folder.

The server listens on a free loopback port (and a Unix socket in its own folder), with password
authentication for one user, so tests can give a wrong password too. Durability is off (fsync,
full pages): it lives for one test session. As root, it runs as an unprivileged user (PostgreSQL
refuses root): ``nobody``, which owns the data folder. ``start`` says why when no server can
start (no ``initdb`` on PATH or in ``/usr/lib/postgresql/*/bin``, or it failed).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "batchgen"
PASSWORD = "s3cret-Pa55"


@dataclass(frozen=True)
class Server:
    """A running server: its URL (with the password) and how to stop it."""

    url: str
    port: int
    data: Path
    pg_ctl: str
    run_as: str | None

    def url_for(self, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{port or self.port}/postgres"

    def stop(self) -> None:
        _run(self.run_as, [self.pg_ctl, "stop", "-D", str(self.data), "-m", "immediate"])
        shutil.rmtree(self.data.parent, ignore_errors=True)


class NoServer(Exception):
    """No PostgreSQL server could start here; the message says why."""


def find_bin(name: str) -> str | None:
    """``name`` on PATH, else in Debian's ``/usr/lib/postgresql/*/bin`` (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(user: str | None, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, user=user, capture_output=True, text=True, check=False, timeout=120, cwd="/"
    )


def start() -> Server:
    """Start a server (see the module docstring); NoServer saying why if it cannot."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise NoServer(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
            "/usr/lib/postgresql/*/bin: install the Debian package postgresql (.ci/run does)"
        )
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="batchgen-pg-"))
    if os.geteuid() == 0:
        run_as = "nobody"
        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            raise NoServer("running as root, and there is no user 'nobody' to run it as") from None
        os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
    data, password_file = root / "data", root / "password"
    password_file.write_text(PASSWORD + "\n")
    if run_as is not None:
        shutil.chown(password_file, run_as)
    made = _run(
        run_as,
        [
            initdb,
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise NoServer(f"initdb failed: {made.stderr.strip()[-400:]}")
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    started = _run(
        run_as,
        [
            pg_ctl,
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            options,
        ],
    )
    if started.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise NoServer(f"pg_ctl start failed: {(started.stderr + log).strip()[-400:]}")
    server = Server("", port, data, pg_ctl, run_as)
    return Server(server.url_for(), port, data, pg_ctl, run_as)
