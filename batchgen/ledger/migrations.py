"""The ledger's schema, as an ordered list of small migrations (``PRAGMA user_version`` says
how many have run). Append, never edit: a folder written by any earlier batchgen is brought up
to date, one step after another, in the transaction that opens it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from batchgen.ledger.unique_ids import dedupe


def _script(db: sqlite3.Connection, sql: str) -> None:
    # Statement by statement: executescript() would COMMIT the migration's open transaction.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE jobs (
            key TEXT PRIMARY KEY,
            position INTEGER NOT NULL,
            row INTEGER NOT NULL,
            line INTEGER,
            repeat INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            payload TEXT NOT NULL,
            extra TEXT NOT NULL,
            filename TEXT NOT NULL,
            status TEXT NOT NULL,
            request_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            possibly_duplicate INTEGER NOT NULL DEFAULT 0,
            queue_position INTEGER,
            video_url TEXT,
            video_path TEXT,
            bytes INTEGER,
            sha256 TEXT,
            cost_usd REAL,
            error TEXT,
            error_type TEXT,
            submitted_at REAL,
            started_at REAL,
            completed_at REAL,
            updated_at REAL NOT NULL,
            in_input INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX jobs_status ON jobs (status);
        CREATE INDEX jobs_position ON jobs (position);
        -- Every request id a job was ever given, for provenance and for cancelling.
        CREATE TABLE requests (
            key TEXT NOT NULL REFERENCES jobs (key),
            request_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            submitted_at REAL NOT NULL,
            PRIMARY KEY (key, request_id)
        );
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    )


def _v2(db: sqlite3.Connection) -> None:
    # Request ids belong to the host (and key) that issued them; attempts stay cumulative.
    _script(
        db,
        """
        ALTER TABLE jobs ADD COLUMN origin TEXT;
        ALTER TABLE jobs ADD COLUMN key_id TEXT;
        ALTER TABLE jobs ADD COLUMN retry_from INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN origin TEXT;
        ALTER TABLE requests ADD COLUMN key_id TEXT;
        CREATE INDEX jobs_filename ON jobs (filename);
    """,
    )


def _v3(db: sqlite3.Connection) -> None:
    # Local input files: each job's (param -> path, sha256, size, mime) and what its last
    # submit sent in their place; each file content uploaded once per storage, its URL kept.
    _script(
        db,
        """
        ALTER TABLE jobs ADD COLUMN files TEXT;
        ALTER TABLE jobs ADD COLUMN sent TEXT;
        CREATE TABLE uploads (
            sha256 TEXT NOT NULL,
            origin TEXT NOT NULL,
            url TEXT NOT NULL,
            size INTEGER NOT NULL,
            uploaded_at REAL NOT NULL,
            stale INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (sha256, origin)
        );
        CREATE INDEX uploads_url ON uploads (url);
    """,
    )


def _v4(db: sqlite3.Connection) -> None:
    # Where a job's video is when workers share a ledger (see JobRow.video_dir): the columns
    # of every backend are the same, so a job reads the same from either.
    db.execute("ALTER TABLE jobs ADD COLUMN video_dir TEXT")


def _v5(db: sqlite3.Connection) -> None:
    # What the provider billed (x-fal-billable-units x unit price), beside the estimate.
    db.execute("ALTER TABLE jobs ADD COLUMN billed_usd REAL")


def _v6(db: sqlite3.Connection) -> None:
    # A request id is one job's, forever (batchgen.ledger.unique_ids).
    dedupe(db)


# Ordered; the ledger's user_version says how many have run. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
