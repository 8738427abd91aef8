"""Partitions: one dynamic partition per slice of a crawl's WAT files."""

from dagster import DynamicPartitionsDefinition

wat_slices = DynamicPartitionsDefinition(name="wat_slices")
