"""The operators' review dashboard."""
