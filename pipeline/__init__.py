"""Config-driven TFX pipeline: config → ingest → validate → transform → train → evaluate → push."""
