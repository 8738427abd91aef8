"""The environment a hop's remote workers need, sent in the Ray job's ``runtime_env``.

Workers on a cluster do not inherit the step's environment: S3 credentials and endpoint (from
the lake's or the crawl source's storage options), proxy variables, the offline switches of
libraries that would otherwise reach the network, and (for a cluster on this machine) the
driver's import path, so the workers run the same code as the step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PASSED_THROUGH = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION",
    "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
    "NO_ALBUMENTATIONS_UPDATE", "GX_ANALYTICS_ENABLED", "DAGSTER_DISABLE_TELEMETRY",
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CRAWL2DIFFUSION_FAULT",
)  # fmt: skip
"""Variables copied from the step's environment when set there."""

OFFLINE = {"NO_ALBUMENTATIONS_UPDATE": "1", "GX_ANALYTICS_ENABLED": "false"}
"""Set for every worker unless the step sets them otherwise."""

_S3_OPTIONS = ("key", "secret", "token", "endpoint_url", "client_kwargs")


def s3_env(options: Mapping[str, Any]) -> dict[str, str]:
    """``AWS_*`` variables for s3fs storage options (``key``, ``secret``, ``token``,
    ``endpoint_url`` or ``client_kwargs.endpoint_url``, ``client_kwargs.region_name``); other
    options cannot be carried by variables and are logged."""
    client = dict(options.get("client_kwargs") or {})
    endpoint = options.get("endpoint_url") or client.get("endpoint_url")
    values = {
        "AWS_ACCESS_KEY_ID": options.get("key"),
        "AWS_SECRET_ACCESS_KEY": options.get("secret"),
        "AWS_SESSION_TOKEN": options.get("token"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": client.get("region_name"),
    }
    ignored = set(options) - set(_S3_OPTIONS)
    ignored |= {f"client_kwargs.{k}" for k in client if k not in ("endpoint_url", "region_name")}
    ignored.discard("anon")  # anonymous access needs no credentials
    if ignored:
        log.warning("storage options %s cannot be passed to workers", sorted(ignored))
    return {name: str(value) for name, value in values.items() if value}


def project_root() -> str:
    """The folder that holds the ``pipeline`` package this process imports."""
    return str(Path(__file__).resolve().parents[2])


def worker_env(
    storage_options: Mapping[str, Any] | None = None,
    extra: Mapping[str, str | None] | None = None,
    local: bool = True,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The workers' variables: :data:`OFFLINE`, then those of :data:`PASSED_THROUGH` the step
    has, then ``storage_options``' S3 variables, then ``extra`` (``None`` unsets: sent as
    ``""``, which proxy and credential readers treat as unset). ``local``: the cluster runs on
    this machine, so the workers import the project from the driver's folder too."""
    env_in = os.environ if environ is None else environ
    env: dict[str, str] = dict(OFFLINE)
    env.update({name: env_in[name] for name in PASSED_THROUGH if env_in.get(name)})
    env.update(s3_env(storage_options or {}))
    env.update({name: "" if value is None else value for name, value in (extra or {}).items()})
    if local:
        paths = [project_root(), *filter(None, env_in.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
