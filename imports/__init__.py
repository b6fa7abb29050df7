"""Bring the chain's own exports in: read files, validate every row, upsert by the chain's ids."""
