"""Dagster concurrency pools: the steps that share a scarce resource across runs.

An asset names its pool (``pool=Pool.DOWNLOAD``); the deployment sets each pool's limit in the
instance's database (``dagster instance concurrency set <pool> <limit>``), from
``infra/pools.yaml`` (docs/deploy.md). Unset, a pool takes ``concurrency.pools.default_limit``
of the instance's dagster.yaml; with no instance limit at all (the demo), a pool does not limit.
"""

from __future__ import annotations

from typing import Final


class Pool:
    """Pool names (plain strings: Dagster serializes them into its job snapshots)."""

    DOWNLOAD: Final = "download"
    """Steps that fetch from the web: WAT files (hop 1), images (hop 3, img2dataset)."""
    GPU: Final = "gpu"
    """Steps that need a GPU for their whole duration: training."""

    ALL: Final = (DOWNLOAD, GPU)
