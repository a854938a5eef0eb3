"""Code every finmatch service shares: vocabulary, errors, schemas, settings helpers."""
