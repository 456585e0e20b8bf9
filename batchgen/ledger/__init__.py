"""Ledger: the durable state of a batch.

``states`` names where a job can be and the allowed moves; ``base`` is the interface every
other folder uses, ``core`` its one implementation in SQL, over two backends: ``store`` keeps
a folder's jobs in ``DIR/batchgen.db`` (SQLite, the default; schema in ``migrations``), and
``postgres`` a named batch in a PostgreSQL database (``shared`` opens it by URL; schema in
``pg_schema``) that several runs work together, each claiming jobs under a lease
(``leases``). Each move is committed before the action it records; during a run ``writer``
commits them from a thread, many to a transaction. ``uploads`` remembers the
input files uploaded for the batch; ``manifest`` writes what the ledger holds as
``manifest.csv``, ``manifest.jsonl`` and ``run.json``.

May import: ``batchgen.errors`` only (and psycopg, in ``postgres`` alone).
"""
