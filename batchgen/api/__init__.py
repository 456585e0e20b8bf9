"""API: talking to the provider's queue.

``providers`` turns a preset from ``providers.yaml`` (base URL, auth scheme, key variable) and the
run's flags into a connection; ``client`` submits, looks at status, reads results and cancels;
``answers`` reads an answer with a size cap and counts unreadable ones; ``classify`` is the one
place that turns an HTTP answer into an error class; ``backoff`` says how long to wait before
trying again; ``storage`` uploads local input files to fal storage (``storage_answers`` reads
its answers), ``datauri`` inlines them for a provider without storage.

May import: ``batchgen.plan`` (endpoint specs, settings), ``batchgen.errors``, ``batchgen.version``.
"""
