"""The PostgreSQL ledger's schema: one database, many batches, each in a schema of its own.

``batchgen.batches`` names every batch of the database (``--batch NAME``), the PostgreSQL schema
its tables live in (``b_1``, ``b_2``...: batch names are free text, schema names are not) and
how many of ``MIGRATIONS`` have run on it. A batch's tables are those of the SQLite ledger
(``batchgen.ledger.migrations``), with PostgreSQL's types, plus what workers sharing the batch
need: each job's claim (``owner``, ``lease_until``, Unix seconds on the database's clock) and
the ``workers`` table. Migrations run under an advisory lock, so workers starting together
create a batch once. Append, never edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchgen.ledger.unique_ids import dedupe

# Held while batches are created or migrated (any 64-bit number unique to batchgen).
SCHEMA_LOCK = 0x62617463_6867656E

BATCHES = """
CREATE SCHEMA IF NOT EXISTS batchgen;
CREATE TABLE IF NOT EXISTS batchgen.batches (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
)
"""


def _v1(db: Any) -> None:
    script(
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
            bytes BIGINT,
            sha256 TEXT,
            cost_usd DOUBLE PRECISION,
            error TEXT,
            error_type TEXT,
            submitted_at DOUBLE PRECISION,
            started_at DOUBLE PRECISION,
            completed_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL,
            in_input INTEGER NOT NULL DEFAULT 1,
            origin TEXT,
            key_id TEXT,
            retry_from INTEGER NOT NULL DEFAULT 0,
            files TEXT,
            sent TEXT,
            video_dir TEXT,
            owner TEXT,
            lease_until DOUBLE PRECISION
        );
        CREATE INDEX jobs_status ON jobs (status, position);
        CREATE INDEX jobs_position ON jobs (position);
        CREATE INDEX jobs_filename ON jobs (filename);
        CREATE INDEX jobs_owner ON jobs (owner);
        CREATE TABLE requests (
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            key TEXT NOT NULL REFERENCES jobs (key),
            request_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            submitted_at DOUBLE PRECISION NOT NULL,
            origin TEXT,
            key_id TEXT,
            PRIMARY KEY (key, request_id)
        );
        CREATE INDEX requests_seq ON requests (seq);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE uploads (
            sha256 TEXT NOT NULL,
            origin TEXT NOT NULL,
            url TEXT NOT NULL,
            size BIGINT NOT NULL,
            uploaded_at DOUBLE PRECISION NOT NULL,
            stale INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (sha256, origin)
        );
        CREATE INDEX uploads_url ON uploads (url);
        -- Every batchgen run that worked on the batch: where it downloads, when last heard of.
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            folder TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            seen_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION
        );
    """,
    )


def script(db: Any, sql: str) -> None:
    """Run each statement of ``sql`` in turn."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v2(db: Any) -> None:
    # What the provider billed (see the SQLite ledger's fifth migration).
    db.execute("ALTER TABLE jobs ADD COLUMN billed_usd DOUBLE PRECISION")


def _v3(db: Any) -> None:
    # A request id is one job's, forever (batchgen.ledger.unique_ids).
    dedupe(db, "%s")


# Ordered; a batch's ``version`` says how many have run. Append, never edit.
MIGRATIONS: list[Callable[[Any], None]] = [_v1, _v2, _v3]
