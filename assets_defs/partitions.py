"""Partitions: one dynamic partition per slice of a crawl's WAT files, and one per crawl."""

from dagster import DynamicPartitionsDefinition

wat_slices = DynamicPartitionsDefinition(name="wat_slices")
crawls = DynamicPartitionsDefinition(name="crawls")
"""Dataset-level assets (the released dataset, aesthetics) have one partition per crawl."""
