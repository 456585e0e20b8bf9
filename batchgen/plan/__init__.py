"""Plan: from input files to a validated, costed list of jobs, with no network.

``inputs`` reads CSV, TSV, TXT, XLSX, YAML and JSONL with line numbers (``sheets`` the
spreadsheet exports, ``encodings`` their text encoding, ``table`` the rows read); ``columns``
matches columns to parameters; ``jobspec`` reads a YAML job spec; ``endpoint`` holds an
endpoint's schema, defaults and price (built-ins are the data files in ``endpoints/``);
``settings`` the run options; ``naming`` the file-name template; ``build`` puts them together
(``build_plan``): every row checked, every job keyed and priced; ``template`` writes a
ready-to-fill sheet for an endpoint.

May import: ``batchgen.errors`` only.
"""
