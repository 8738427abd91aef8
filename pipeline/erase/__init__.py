"""Erasure: the one step that deletes an image's bytes (tar members, embeddings, image rows,
report grids), vacuums the tables that held them and leaves a tombstone in ``erasures``."""
