"""Stage ``data``: dataset-schema, split-isolation and the great-expectations suite."""
