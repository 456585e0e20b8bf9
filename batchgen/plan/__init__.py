"""Plan: from input files to a validated, costed list of jobs, with no network.

``inputs`` reads CSV, TSV, TXT, XLSX, YAML and JSONL with line numbers (``sheets`` the
spreadsheet exports, ``encodings`` their text encoding, ``table`` the rows read;
``imagefolder`` a folder or glob of images, one row each); ``columns``
matches columns to parameters; ``jobspec`` reads a YAML job spec; ``endpoint`` holds an
endpoint's schema, defaults and price (built-ins are the data files in ``endpoints/``);
``inputfiles`` checks the files a ``type: file`` parameter names (``media`` tells their kind by
their first bytes, ``fileorigins`` what folder a relative path is taken against);
``settings`` the run options; ``naming`` the file-name template; ``build`` puts them together
(``build_plan``): every row checked, every job keyed and priced; ``template`` writes a
ready-to-fill sheet for an endpoint.

May import: ``batchgen.errors`` only.
"""
