"""LAION-Aesthetics: scores from stored embeddings and the subset rules."""
