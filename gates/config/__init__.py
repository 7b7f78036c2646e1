"""Stage ``config``: model IDs (model-id, fix-model-ids, triage) and job configs."""
