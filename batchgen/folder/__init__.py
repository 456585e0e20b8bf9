"""Folder: what works on an output folder after a run, or beside a live one.

``status`` reads counts, spend and jobs in flight; ``cancel`` cancels jobs at the provider;
``report`` (with ``report_page``) writes a self-contained HTML gallery, and ``compare`` (with
``compare.html``/``.css``/``.js``) a side-by-side view when models or matrix variants differ;
``export`` hands the batch on as CSV, JSONL, Parquet or a dataset folder.

May import: ``batchgen.api``, ``batchgen.plan``, ``batchgen.ledger``, ``batchgen.errors``.
"""
