"""The download hop: img2dataset into WebDataset shards, per-pair results."""
