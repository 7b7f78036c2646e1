"""The pipeline: stages, promotion, the ledger and run folders."""
