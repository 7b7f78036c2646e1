"""Stage ``merge``: merge-equivalence and artifacts."""
