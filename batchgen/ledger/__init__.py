"""Ledger: the durable state of a batch.

``states`` names where a job can be and the allowed moves; ``store`` keeps every job in
``DIR/batchgen.db`` (SQLite) and commits each move before the action it records, its schema
brought up to date by ``migrations``; ``uploads`` remembers the input files uploaded for the
folder; ``manifest`` writes what the ledger holds as ``manifest.csv``, ``manifest.jsonl`` and
``run.json``.

May import: ``batchgen.errors`` only.
"""
