"""Plan: from input files to a validated, costed list of jobs, with no network.

``inputs`` reads CSV, TSV, XLSX, YAML and JSONL with line numbers; ``jobspec`` reads a YAML job
spec; ``endpoint`` holds an endpoint's schema, defaults and price (built-ins are the data files in
``endpoints/``); ``settings`` the run options; ``naming`` the file-name template; ``build`` puts
them together (``build_plan``): every row checked, every job keyed and priced.

May import: ``batchgen.errors`` only.
"""
