"""Stage ``train``: lora-targets and provenance."""
