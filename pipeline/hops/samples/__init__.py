"""Seeded samples from a trained checkpoint, and how well they follow prompts."""
