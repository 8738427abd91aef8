"""The crawl2diffusion command line (reads the same environment as the code location)."""
