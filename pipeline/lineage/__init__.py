"""Lineage: the trace index over every hop, and search by image."""
