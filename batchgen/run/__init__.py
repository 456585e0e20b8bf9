"""Run: one run of a plan against the provider.

``runner`` opens the folder, brings the plan into the ledger and writes ``run.json`` and the
manifest (``runlog`` keeps its log file), with ``resume`` deciding what the folder's earlier
state puts back in line; ``engine`` runs the workers (``submit`` sends a job, ``follow`` follows
it, ``jobs`` holds the moves they share), with ``limits`` (concurrency slots, spend cap),
``polling`` (when to look again) and ``timing`` (every wait, injectable); ``download_pool`` and
``download`` fetch each video, ``mp4check`` verifies it; ``uploads`` makes a job's local input
files URLs before its submit, ``ahead`` uploads them while the job waits for a slot;
``progress`` reports to whoever draws it; ``outcome`` says how the run ended and what to do
next.

May import: ``batchgen.api``, ``batchgen.plan``, ``batchgen.ledger``, ``batchgen.errors``,
``batchgen.version``.
"""
