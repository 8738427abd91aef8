"""Hop 2: clean, filter and language-tag alt texts into pairs."""
