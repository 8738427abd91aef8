"""The hops of the pipeline, in order: crawl, wat, alt_text, clip, dataset, aesthetic, download,
training, samples, audit. Each package is plain Python (no Dagster) and testable alone."""
