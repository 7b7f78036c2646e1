"""Tests of ``runners/integrations``."""
