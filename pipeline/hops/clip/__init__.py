"""Hop 3: fetch, decode, embed with CLIP, score with heads, filter."""
