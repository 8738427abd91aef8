"""One module per hop; each asset wires a ``pipeline`` function to the lake and records metadata."""
