"""Tests of ``runners/scaffold``."""
