"""Tests of ``gates/frame``."""
