"""Shared infrastructure: the lake store, keys and URL rules."""
