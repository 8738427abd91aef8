"""Crawl manifest: the crawl index, wat.paths.gz, slicing into partitions."""
