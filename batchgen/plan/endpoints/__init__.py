"""Built-in endpoint specs: one YAML data file per endpoint (see batchgen.plan.endpoint)."""
