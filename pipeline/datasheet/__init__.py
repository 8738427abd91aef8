"""The dataset report: a datasheet (Gebru et al., "Datasheets for Datasets") of one crawl's
release, computed from the lake with DuckDB (``figures``), rendered as Markdown and as a
self-contained HTML file (``render``). ``terms`` holds the caption term groups and artist
names the report follows through the filters."""
